"""Shared helpers for the points tests: capture an event as the middleware would, apply the outbox, and
check the ledger invariants."""

import datetime as dt
import uuid
import zoneinfo

from django.db.models import Count, Sum

from points.capture import event_capture
from points.models import Account, LedgerEntry
from points.processing import events_process_batch

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")  # UTC+8 all year: a local day starts at 16:00 UTC


def local(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SHANGHAI)


def capture(user, action, at, business_id="", event_id=None):
    return event_capture(
        user_id=user.pk, action_id=action.pk, business_id=business_id, occurred_at=at, event_id=event_id
    )


def apply_all() -> int:
    total = 0
    while applied := events_process_batch():
        total += applied
    return total


def balance(user) -> int:
    return Account.objects.filter(user=user).values_list("balance", flat=True).first() or 0


def assert_ledger_invariants(users=None) -> None:
    """balance == sum == last balance_after; each entry's before is the previous after; never negative."""
    accounts = Account.objects.all() if users is None else Account.objects.filter(user__in=users)
    for account in accounts:
        entries = list(LedgerEntry.objects.filter(account=account).order_by("id"))
        previous_after = 0
        for entry in entries:
            assert entry.balance_before == previous_after, entry
            assert entry.balance_after == entry.balance_before + entry.amount
            assert entry.balance_after >= 0
            previous_after = entry.balance_after
        total = LedgerEntry.objects.filter(account=account).aggregate(total=Sum("amount"))["total"] or 0
        assert account.balance == total == previous_after
    duplicated = LedgerEntry.objects.values("idempotency_key").annotate(n=Count("id")).filter(n__gt=1)
    assert not duplicated.exists()


def new_event_id() -> uuid.UUID:
    return uuid.uuid4()
