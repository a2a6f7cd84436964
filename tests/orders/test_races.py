"""Races on PostgreSQL: separate processes for seats, paired threads for payment versus expiry.

Each racer has its own database connection; on SQLite every write transaction is serialised by the
database lock (IMMEDIATE), so these races only mean something on PostgreSQL's row locks.
"""

import multiprocessing
import random
import threading
from collections import Counter
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.db.models import Sum
from django.test import Client
from django.utils import timezone

from orders.models import Coupon, Order, OrderEvent, PaymentEvent, Product, UserCoupon
from orders.services import LineRequest, OrderError, order_expire, order_expire_overdue, order_place
from points.models import Account, LedgerEntry
from points.services import balances_check
from tests.orders.factories import CouponFactory, ProductFactory, callback_body, give_points, signed_post

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PROCESSES = 6


@pytest.fixture(autouse=True)
def _postgres_only(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("races need PostgreSQL row locks; SQLite serialises every write transaction")


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    """The races are about the database; the tasks they would enqueue are tested elsewhere."""
    for name in ("order_expire_task", "order_fulfil_task", "order_notify_task"):
        monkeypatch.setattr(f"orders.tasks.{name}.apply_async", lambda **kwargs: None)


def _place_for(user_ids, barrier, results):
    connections.close_all()  # never share the parent's socket
    user_model = get_user_model()
    users = list(user_model.objects.filter(pk__in=user_ids))
    barrier.wait()
    outcome = Counter()
    for user in users:
        try:
            order_place(user=user, lines=[LineRequest(sku="SEATS", quantity=1)])
            outcome["placed"] += 1
        except OrderError as exc:
            outcome[exc.code] += 1
    connections.close_all()
    results.put(dict(outcome))


def _race_for_seats(user_ids: list[int]) -> Counter:
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(PROCESSES), context.Queue()
    connections.close_all()
    shards = [user_ids[i::PROCESSES] for i in range(PROCESSES)]
    procs = [context.Process(target=_place_for, args=(shard, barrier, results)) for shard in shards]
    for proc in procs:
        proc.start()
    total = Counter()
    for _ in procs:
        total.update(results.get(timeout=120))
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    return total


def test_300_users_racing_for_50_seats_get_exactly_50_and_10_released_let_10_more_in():
    product = ProductFactory(sku="SEATS", capacity=50)
    user_model = get_user_model()
    user_model.objects.bulk_create(user_model(username=f"racer{i}") for i in range(300))
    user_ids = list(user_model.objects.filter(username__startswith="racer").values_list("pk", flat=True))

    first = _race_for_seats(user_ids)

    assert first == {"placed": 50, "sold_out": 250}
    product.refresh_from_db()
    assert (product.seats_taken, Order.objects.count()) == (50, 50)

    released = list(Order.objects.order_by("?").values_list("pk", flat=True)[:10])
    Order.objects.filter(pk__in=released).update(expires_at=timezone.now())
    assert order_expire_overdue() == 10
    product.refresh_from_db()
    assert product.seats_taken == 40

    losers = list(user_model.objects.filter(pk__in=user_ids).exclude(orders__isnull=False).values_list("pk", flat=True))
    assert len(losers) == 250
    second = _race_for_seats(losers)

    assert second == {"placed": 10, "sold_out": 240}
    product.refresh_from_db()
    assert product.seats_taken == 50
    assert Order.objects.filter(status="pending").count() == 50


ORDERS = 500
PAIRS = 4
POINTS = 100


def test_500_payments_racing_their_expiry_have_exactly_one_winner_each():
    ProductFactory(sku="COURSE", price=Decimal("10.00"), capacity=ORDERS)
    coupon = CouponFactory(code="RACE", value=Decimal("1.00"), usage_limit=ORDERS)
    user_model = get_user_model()
    users = user_model.objects.bulk_create(user_model(username=f"payer{i}") for i in range(50))
    for user in users:
        give_points(user, POINTS * 10)
    orders = []
    for i in range(ORDERS):
        user = users[i % len(users)]
        UserCoupon.objects.create(user=user, coupon=coupon)
        orders.append(
            order_place(user=user, lines=[LineRequest(sku="COURSE", quantity=1)], coupon_code="RACE", points=POINTS)
        )
    assert {o.total for o in orders} == {Decimal("8.00")}
    Order.objects.update(expires_at=timezone.now())  # all overdue: the expiry may win every one of them
    random.shuffle(orders)
    shards = [orders[i::PAIRS] for i in range(PAIRS)]
    barriers = [threading.Barrier(2) for _ in range(PAIRS)]
    errors = []

    def payer(shard, barrier):
        client = Client()
        try:
            for order in shard:
                barrier.wait()
                response = signed_post(client, callback_body(order, event_id=f"evt-{order.number}"))
                if response.status_code != 200:
                    errors.append(response.content)
        finally:
            connection.close()

    def expirer(shard, barrier):
        try:
            for order in shard:
                barrier.wait()
                order_expire(order_id=order.pk)
        finally:
            connection.close()

    pairs = list(zip(shards, barriers, strict=True))
    threads = [threading.Thread(target=side, args=pair) for pair in pairs for side in (payer, expirer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert errors == []

    statuses = Counter(Order.objects.values_list("status", flat=True))
    assert set(statuses) <= {"paid", "expired"}
    assert statuses["paid"] + statuses["expired"] == ORDERS
    # Exactly one transition out of pending per order: nobody was both paid and expired.
    left_pending = Counter(OrderEvent.objects.filter(from_status="pending").values_list("order_id", flat=True))
    assert set(left_pending.values()) == {1} and len(left_pending) == ORDERS
    # Every payment was recorded; each one that lost is flagged for refund, the winners are not.
    outcomes = dict(PaymentEvent.objects.values_list("order__number", "outcome"))
    for number, status, needs_refund in Order.objects.values_list("number", "status", "needs_refund"):
        assert (outcomes[number], needs_refund) == (("paid", False) if status == "paid" else ("late", True))
    # Points: one redeem per order, one refund per expired order and none for paid ones.
    expired = set(Order.objects.filter(status="expired").values_list("number", flat=True))
    refunds = Counter(LedgerEntry.objects.filter(kind="refund").values_list("order_number", flat=True))
    assert refunds == Counter(expired)
    assert set(LedgerEntry.objects.filter(kind="refund").values_list("amount", flat=True)) <= {POINTS}
    for user in users:
        paid_orders = Order.objects.filter(user=user, status="paid").count()
        account = Account.objects.get(user=user)
        assert account.balance == POINTS * 10 - POINTS * paid_orders
        assert account.entries.aggregate(total=Sum("amount"))["total"] == account.balance
    # Coupons: used by paid orders, back to unused for expired ones; seats held only by paid orders.
    coupon_states = Counter(UserCoupon.objects.values_list("status", flat=True))
    assert coupon_states == Counter({"used": statuses["paid"], "unused": statuses["expired"]})
    assert Coupon.objects.get().times_used == statuses["paid"]
    assert Product.objects.get().seats_taken == statuses["paid"]
    assert balances_check() == []
    assert order_expire_overdue() == 0
