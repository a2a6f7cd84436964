"""The ledger's one append path and the one place that locks points accounts.

Every balance change, single (`ledger_append`: a redeem, a refund, a staff adjustment, a reversal) or batched
(`ledger_append_many`: the awards of an event batch, the refunds of an order sweep), goes through one writer,
`_append`: a single append is a batch of one. One rule for all of them:

- accounts are locked with `accounts_lock`, in id order, before any entry is written, so changes to one account
  are serialised, each entry's balance_before is the previous entry's balance_after, and two writers never
  deadlock on accounts;
- an idempotency key is read after the locks: a key already in the ledger (or earlier in the same batch) for the
  same account, amount and kind appends nothing and returns the first entry; the same key for another movement
  raises IdempotencyConflict, and nothing of the batch is written;
- a debit the balance cannot cover raises InsufficientPoints, and nothing of the batch is written.

Call inside a transaction when the append must commit or roll back with the caller's work: the functions open a
`transaction.atomic()` of their own, which nests as a savepoint, so a refused append leaves the caller's
transaction usable.
"""

import secrets
from dataclasses import dataclass, field
from datetime import UTC
from typing import NamedTuple

from django.db import connection, models, transaction
from django.utils import timezone

from points.bulk import any_of, values_copy
from points.models import Account, LedgerEntry

# The columns an append writes, in the order the batch path streams them.
LEDGER_FIELDS = (
    "serial_number",
    "account_id",
    "amount",
    "balance_before",
    "balance_after",
    "kind",
    "order_number",
    "idempotency_key",
    "reason",
    "language",
    "country",
    "location",
    "created_by_id",
    "created_at",
    "rule_id",
    "progress_id",
    "source_id",
    "reverses_id",
)
LINK_FIELDS = ("created_by_id", "rule_id", "progress_id", "source_id", "reverses_id")
KINDS = frozenset(LedgerEntry.Kind.values)


class InsufficientPoints(Exception):
    """The balance cannot cover a debit; nothing was written."""

    def __init__(self, *, balance: int, requested: int):
        self.balance = balance
        self.requested = requested
        super().__init__(f"balance {balance} cannot cover {requested} points")


class IdempotencyConflict(ValueError):
    """An idempotency key already used for a different movement (account, amount or kind)."""


@dataclass(frozen=True)
class Append:
    """One ledger movement to append: exactly one of `user_id` (the account is created on demand) or
    `account_id`; `links` holds the entry's foreign keys by attname (rule_id, progress_id, source_id,
    created_by_id, reverses_id)."""

    amount: int
    kind: str
    idempotency_key: str
    user_id: int | None = None
    account_id: int | None = None
    order_number: str = ""
    reason: str = ""
    language: str = ""
    country: str = ""
    location: str = ""
    links: dict = field(default_factory=dict)


def serial_numbers(count: int, *, now=None) -> list[str]:
    """`count` serial numbers of 32 characters that sort by time: UTC timestamp to the second, then 18 random
    hex digits."""
    stamp = f"{(now or timezone.now()).astimezone(UTC):%Y%m%d%H%M%S}"
    return [stamp + secrets.token_hex(9) for _ in range(count)]


class LockedAccount(NamedTuple):
    pk: int
    user_id: int
    balance: int


def accounts_lock(*, user_ids=(), account_ids=()) -> list[LockedAccount]:
    """The accounts of `user_ids` (created on demand) and of `account_ids`, locked for update in id order.

    The one place that locks accounts: every balance change goes through it. A user id with no account yet
    gets one (a concurrent creation of the same account is waited for, not an error); an unknown account id
    raises Account.DoesNotExist. Call inside a transaction.
    """
    user_ids, account_ids = set(user_ids), set(account_ids)
    wanted = models.Q(any_of(Account, "user_id", sorted(user_ids)))
    if account_ids:
        wanted |= models.Q(any_of(Account, "id", sorted(account_ids)))
    query = Account.objects.select_for_update().filter(wanted).order_by("pk").values_list("pk", "user_id", "balance")
    locked = [LockedAccount(*row) for row in query]
    missing = user_ids - {account.user_id for account in locked}
    if missing:  # the first movement of these users: create their accounts, then lock everything again in order
        Account.objects.bulk_create([Account(user_id=user_id) for user_id in sorted(missing)], ignore_conflicts=True)
        locked = [LockedAccount(*row) for row in query.all()]
    unknown = account_ids - {account.pk for account in locked}
    if unknown:
        raise Account.DoesNotExist(f"no points account {sorted(unknown)}")
    return locked


def _validated(append: Append) -> Append:
    if (append.account_id is None) == (append.user_id is None):
        raise TypeError("a ledger append needs exactly one of account_id or user_id")
    if not append.idempotency_key:
        raise ValueError("an idempotency key is required")
    if not isinstance(append.amount, int) or isinstance(append.amount, bool) or not append.amount:
        raise ValueError(f"a ledger entry moves a non-zero whole number of points, not {append.amount!r}")
    if append.kind not in KINDS:
        raise ValueError(f"unknown ledger entry kind {append.kind!r}")
    unknown = set(append.links) - set(LINK_FIELDS)
    if unknown:
        raise ValueError(f"unknown ledger entry links {sorted(unknown)}")
    return append


def _plan(appends: list[Append]) -> tuple[list[tuple], dict[int, int], dict[str, int]]:
    """Lock the accounts, apply the idempotency rule and the balance rule in input order.

    Returns the rows to insert (LEDGER_FIELDS order), the accounts' new balances by account id, and, for each
    key that was already in the ledger, the id of its first entry.
    """
    accounts = accounts_lock(
        user_ids={a.user_id for a in appends if a.user_id is not None},
        account_ids={a.account_id for a in appends if a.account_id is not None},
    )
    by_user = {account.user_id: account for account in accounts}
    balances = {account.pk: account.balance for account in accounts}
    # Read after the locks: a concurrent append with one of these keys on these accounts has committed by now.
    keys = [a.idempotency_key for a in appends]
    found = LedgerEntry.objects.filter(any_of(LedgerEntry, "idempotency_key", keys))
    first: dict[str, tuple] = {
        key: (account_id, amount, kind, pk)
        for key, account_id, amount, kind, pk in found.values_list("idempotency_key", "account", "amount", "kind", "pk")
    }
    existing = {key: movement[3] for key, movement in first.items()}
    now = timezone.now()
    serials = iter(serial_numbers(len(appends), now=now))
    rows, changed = [], {}
    for append in appends:
        account_id = append.account_id if append.account_id is not None else by_user[append.user_id].pk
        seen = first.get(append.idempotency_key)
        if seen is not None:
            if seen[:3] != (account_id, append.amount, append.kind):
                raise IdempotencyConflict(f"idempotency key {append.idempotency_key!r} was used for another entry")
            continue
        first[append.idempotency_key] = (account_id, append.amount, append.kind, None)
        before = balances[account_id]
        after = before + append.amount
        if after < 0:
            raise InsufficientPoints(balance=before, requested=-append.amount)
        balances[account_id] = changed[account_id] = after
        links = append.links
        rows.append(
            (
                next(serials),
                account_id,
                append.amount,
                before,
                after,
                append.kind,
                append.order_number,
                append.idempotency_key,
                append.reason,
                append.language,
                append.country,
                append.location,
                links.get("created_by_id"),
                now,
                links.get("rule_id"),
                links.get("progress_id"),
                links.get("source_id"),
                links.get("reverses_id"),
            )
        )
    return rows, changed, existing


def _balances_write(changed: dict[int, int]) -> None:
    """One UPDATE for every account the batch moved."""
    if not changed:
        return
    now = timezone.now()
    if len(changed) == 1:
        ((account_id, balance),) = changed.items()
        Account.objects.filter(pk=account_id).update(balance=balance, updated_at=now)
        return
    if connection.vendor != "postgresql":
        Account.objects.bulk_update(
            [Account(pk=pk, balance=balance, updated_at=now) for pk, balance in changed.items()],
            ["balance", "updated_at"],
        )
        return
    # Two array parameters whatever the batch's size: no statement with thousands of placeholders to quote.
    table = connection.ops.quote_name(Account._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS a SET balance = v.balance, updated_at = %s "  # noqa: S608 (identifier from metadata)
            "FROM unnest(%s::bigint[], %s::bigint[]) AS v (id, balance) WHERE a.id = v.id",
            [now, list(changed), list(changed.values())],
        )


def _append(appends: list[Append], *, returning: bool) -> tuple[int, list[LedgerEntry], dict[str, int]]:
    """The one writer of ledger entries: validate, plan the batch under the account locks, insert its new
    entries, move the balances, in one transaction. Returns how many entries were new; with `returning`, also
    those entries saved as model instances with their ids (without, they stream as value tuples, COPY on
    PostgreSQL, and no model instance is made), and the id of the first entry of each key already used."""
    appends = [_validated(append) for append in appends]
    if not appends:
        return 0, [], {}
    with transaction.atomic():
        rows, changed, existing = _plan(appends)
        entries = []
        if returning:
            entries = [LedgerEntry(**dict(zip(LEDGER_FIELDS, row, strict=True))) for row in rows]
            LedgerEntry.objects.bulk_create(entries)  # sets their ids (RETURNING on PostgreSQL and SQLite)
        else:
            values_copy(LedgerEntry, LEDGER_FIELDS, rows)
        _balances_write(changed)
    return len(rows), entries, existing


def ledger_append_many(appends: list[Append]) -> int:
    """Append a batch of movements in one transaction; returns how many entries were new.

    Set-based: a batch costs a handful of statements whatever its size (lock, key check, one COPY or INSERT,
    one UPDATE of the balances), and no model instance per entry.
    """
    appended, _entries, _existing = _append(appends, returning=False)
    return appended


def ledger_append(
    *,
    account_id: int | None = None,
    user_id: int | None = None,
    amount: int,
    kind: str,
    idempotency_key: str,
    order_number: str = "",
    reason: str = "",
    language: str = "",
    country: str = "",
    location: str = "",
    created_by=None,
    reverses: LedgerEntry | None = None,
    extra: dict | None = None,
) -> LedgerEntry:
    """Append one entry and move the balance with it: the batch path with a batch of one, returning its entry.

    The same idempotency key returns the entry it made the first time and changes nothing. A debit that the
    balance cannot cover raises InsufficientPoints. `extra` holds the entry's links to the rule, progress and
    source record (model instances or ids).
    """
    links = {}
    for name, value in (extra or {}).items():
        links[LedgerEntry._meta.get_field(name).attname] = value.pk if isinstance(value, models.Model) else value
    if created_by is not None:
        links["created_by_id"] = created_by.pk
    if reverses is not None:
        links["reverses_id"] = reverses.pk
    append = Append(
        amount=amount,
        kind=kind,
        idempotency_key=idempotency_key,
        user_id=user_id,
        account_id=account_id,
        order_number=order_number,
        reason=reason,
        language=language,
        country=country,
        location=location,
        links=links,
    )
    _appended, entries, existing = _append([append], returning=True)
    return entries[0] if entries else LedgerEntry.objects.get(pk=existing[idempotency_key])
