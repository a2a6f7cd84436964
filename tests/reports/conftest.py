"""Known data around one business day, 2026-11-28 in Asia/Shanghai (UTC+8, no DST), for report emails."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from celery import states
from django_celery_results.models import TaskResult

from backoffice.exports.models import ExportJob
from orders.models import Order
from points.ledger import ledger_append
from points.models import LedgerEntry, PendingEvent
from tests.points.factories import RuleFactory, UserFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 11, 28, tzinfo=SHANGHAI)
SEND_AT = datetime(2026, 11, 29, 6, 0, tzinfo=SHANGHAI)  # the daily schedule's morning run


@dataclass
class KnownDay:
    rules: list
    buyer: object


def _at(when: datetime):
    return time_machine.travel(when, tick=False)


def _order(user, number: str, status: str, total: str, *, needs_refund: bool = False) -> Order:
    total = Decimal(total)
    return Order.objects.create(
        number=number,
        user=user,
        status=status,
        subtotal=total,
        total=total,
        expires_at=DAY + timedelta(days=2),
        needs_refund=needs_refund,
    )


def _award(user, amount: int, kind: str, rule=None) -> None:
    ledger_append(
        user_id=user.pk,
        amount=amount,
        kind=kind,
        idempotency_key=f"test:{uuid.uuid4().hex}",
        extra={"rule": rule} if rule else None,
    )


def _result(name: str, status: str) -> None:
    TaskResult.objects.create(task_id=uuid.uuid4().hex, task_name=name, status=status)


@pytest.fixture
def known_day(db, settings):
    """Inside the day: 4 orders (paid 20.00 and 15.50, fulfilled 4.50, pending 10.00), one expired order flagged
    for refund, 50 points awarded by two rules (30 + 20), 10 redeemed, 3 successes and 1 failure of
    `orders.expire_overdue`, 2 successes of `points.outbox_relay`, one export. Just outside it, on both sides:
    one paid order of 99.00, 1000 points awarded, a failed task and an export. Two events wait in the outbox."""
    settings.TIME_ZONE = "Asia/Shanghai"
    buyer = UserFactory()
    rule_a, rule_b = RuleFactory(name="Daily check-in"), RuleFactory(name="First post")
    with _at(DAY - timedelta(minutes=1)):  # 27th, 23:59 local: the day before
        _order(buyer, "BEFORE-1", Order.Status.PAID, "99.00")
        _award(buyer, 1000, LedgerEntry.Kind.AWARD, rule_a)
        _result("orders.expire_overdue", states.FAILURE)
        ExportJob.objects.create(target="ledger", created_by=buyer)
    with _at(DAY + timedelta(hours=1)):
        _order(buyer, "IN-1", Order.Status.PAID, "20.00")
        _order(buyer, "IN-2", Order.Status.PAID, "15.50")
        _order(buyer, "IN-3", Order.Status.FULFILLED, "4.50")
        _order(buyer, "IN-4", Order.Status.PENDING, "10.00")
        _award(buyer, 30, LedgerEntry.Kind.AWARD, rule_a)
        _award(buyer, 20, LedgerEntry.Kind.AWARD, rule_b)
        for _ in range(3):
            _result("orders.expire_overdue", states.SUCCESS)
        _result("orders.expire_overdue", states.FAILURE)
        _result("points.outbox_relay", states.SUCCESS)
        _result("points.outbox_relay", states.SUCCESS)
        ExportJob.objects.create(target="orders", created_by=buyer)
    with _at(DAY + timedelta(hours=23, minutes=59)):  # 28th, 23:59 local: still the day (15:59 UTC)
        _order(buyer, "IN-5", Order.Status.EXPIRED, "7.00", needs_refund=True)
        _award(buyer, -10, LedgerEntry.Kind.REDEEM)
        PendingEvent.objects.create(
            event_id=uuid.uuid4(), user_id=buyer.pk, action_id=rule_a.action_id, occurred_at=DAY
        )
        PendingEvent.objects.create(
            event_id=uuid.uuid4(), user_id=buyer.pk, action_id=rule_a.action_id, occurred_at=DAY
        )
    with _at(DAY + timedelta(days=1, minutes=1)):  # 29th, 00:01 local: the next day
        _order(buyer, "AFTER-1", Order.Status.PAID, "99.00")
        _award(buyer, 1000, LedgerEntry.Kind.AWARD, rule_b)
        _result("points.outbox_relay", states.FAILURE)
        ExportJob.objects.create(target="results", created_by=buyer)
    return KnownDay(rules=[rule_a, rule_b], buyer=buyer)
