"""Refunding the points of many orders at once, for the sweeper.

The same effect as calling points.services.points_refund once per order (one `refund` entry per order, keyed
by the order, idempotent; balances moved with each entry's balance_before equal to the previous entry's
balance_after), in a handful of queries per batch instead of six per order: the accounts are locked
together (in primary-key order, so parallel sweepers never deadlock), the keys already used are read in one
query, the entries are inserted in one statement and the balances updated in one more.

It belongs in points.services (as `points_refund_many`); it lives here until the points engine offers a
batch refund, and follows the ledger's own rules so that balances_check() stays clean.
"""

import uuid
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from points.models import Account, LedgerEntry
from points.services import account_lock


@dataclass(frozen=True)
class Refund:
    user_id: int
    amount: int
    idempotency_key: str
    order_number: str


def _serial_number(now) -> str:
    """The ledger's format: UTC timestamp to the second, then 18 random hex digits (32 characters)."""
    return f"{now:%Y%m%d%H%M%S}{uuid.uuid4().hex[:18]}"


def points_refund_batch(*, refunds: list[Refund], reason: str) -> int:
    """Append one refund entry per item whose key is new; returns how many were appended."""
    if not refunds:
        return 0
    if any(refund.amount <= 0 for refund in refunds):
        raise ValueError("a refund gives back a positive number of points")
    now = timezone.now()
    with transaction.atomic():
        user_ids = sorted({refund.user_id for refund in refunds})
        accounts = {
            account.user_id: account
            for account in Account.objects.select_for_update().filter(user_id__in=user_ids).order_by("pk")
        }
        for user_id in user_ids:  # an account that does not exist yet (rare: a redeem created it)
            if user_id not in accounts:
                accounts[user_id] = account_lock(user_id=user_id)
        used = set(
            LedgerEntry.objects.filter(idempotency_key__in=[r.idempotency_key for r in refunds]).values_list(
                "idempotency_key", flat=True
            )
        )
        entries, changed = [], {}
        for refund in refunds:
            if refund.idempotency_key in used:
                continue
            used.add(refund.idempotency_key)
            account = accounts[refund.user_id]
            before = account.balance
            account.balance = before + refund.amount
            account.updated_at = now
            changed[account.pk] = account
            entries.append(
                LedgerEntry(
                    serial_number=_serial_number(now),
                    account=account,
                    amount=refund.amount,
                    balance_before=before,
                    balance_after=account.balance,
                    kind=LedgerEntry.Kind.REFUND,
                    idempotency_key=refund.idempotency_key,
                    order_number=refund.order_number,
                    reason=reason,
                )
            )
        LedgerEntry.objects.bulk_create(entries)
        _balances_set(accounts=list(changed.values()), now=now)
    return len(entries)


def _balances_set(*, accounts: list[Account], now) -> None:
    """One UPDATE for all the batch's accounts (bulk_update's CASE per row costs more than the refunds)."""
    if not accounts:
        return
    table = connection.ops.quote_name(Account._meta.db_table)
    values = ", ".join(["(%s, %s)"] * len(accounts))
    params = [value for account in accounts for value in (account.pk, account.balance)]
    with connection.cursor() as cursor:
        cursor.execute(
            # UPDATE ... FROM joins once (PostgreSQL, and SQLite since 3.33); a correlated subquery per row
            # would scan the whole VALUES list for every account.
            f"WITH new(id, balance) AS (VALUES {values}) "  # noqa: S608 - table name from the model, values bound
            f"UPDATE {table} SET balance = new.balance, updated_at = %s FROM new WHERE {table}.id = new.id",
            [*params, connection.ops.adapt_datetimefield_value(now)],
        )
