from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from orders.models import TRANSITIONS, Coupon, Entitlement, Order, OrderEvent, PaymentEvent, Product, UserCoupon
from orders.services import (
    FULFIL_GRACE,
    LineRequest,
    OrderError,
    grab_decide,
    grab_request,
    order_cancel,
    order_expire,
    order_expire_overdue,
    order_fulfil,
    order_fulfil_overdue,
    order_mark_refunded,
    order_place,
    order_transition,
    payment_record,
)
from points.models import Account, LedgerEntry
from points.services import balances_check
from tests.orders.factories import CouponFactory, ProductFactory, UserFactory, give_coupon, give_points

pytestmark = pytest.mark.django_db
S = Order.Status


def balance(user) -> int:
    return Account.objects.get(user=user).balance


def place(user, sku, *, quantity=1, **kwargs) -> Order:
    return order_place(user=user, lines=[LineRequest(sku=sku, quantity=quantity)], **kwargs)


def pay(order, event_id="evt-1", amount=None, status="succeeded") -> PaymentEvent:
    return payment_record(
        event_id=event_id,
        order_number=order.number,
        amount=amount if amount is not None else order.total,
        provider_status=status,
        raw_body="{}",
        signed_at=timezone.now(),
    )


@pytest.fixture
def buyer():
    user = UserFactory()
    give_points(user, 1000)
    return user


def test_place_takes_seats_reserves_coupon_redeems_points_and_queues_expiry(buyer, on_commit, monkeypatch):
    product = ProductFactory(sku="COURSE", price=Decimal("40.00"), capacity=30)
    held = give_coupon(buyer, CouponFactory(code="TEN", kind=Coupon.Kind.PERCENT, value=Decimal("10")))
    queued = []
    monkeypatch.setattr("orders.tasks.order_expire_task.apply_async", lambda **kw: queued.append(kw))

    with on_commit(execute=True):
        order = place(buyer, "COURSE", quantity=2, coupon_code="TEN", points=500)

    assert (order.status, order.subtotal, order.discount) == (S.PENDING, Decimal("80.00"), Decimal("8.00"))
    assert (order.points_redeemed, order.points_value, order.total) == (500, Decimal("5.00"), Decimal("67.00"))
    assert abs((order.expires_at - timezone.now()) - timedelta(minutes=30)) < timedelta(seconds=5)
    product.refresh_from_db()
    held.refresh_from_db()
    assert product.seats_taken == 2
    assert held.status == UserCoupon.Status.RESERVED
    assert Coupon.objects.get(code="TEN").times_used == 1
    assert balance(buyer) == 500
    entry = LedgerEntry.objects.get(order_number=order.number)
    assert (entry.kind, entry.amount, entry.idempotency_key) == ("redeem", -500, f"order:{order.number}:redeem")
    assert queued == [{"kwargs": {"order_id": order.pk}, "eta": order.expires_at}]
    assert list(order.events.values_list("from_status", "to_status")) == [("", S.PENDING)]


def test_place_honours_the_timeout_setting(buyer, settings):
    settings.ORDER_PAYMENT_TIMEOUT_MINUTES = 5
    ProductFactory(sku="A")
    now = timezone.now()
    order = place(buyer, "A", now=now)
    assert order.expires_at == now + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("kwargs", "code", "status"),
    [
        ({"sku": "NOPE"}, "unknown_product", 400),
        ({"sku": "OFF"}, "inactive_product", 409),
        ({"sku": "FULL"}, "sold_out", 409),
        ({"sku": "A", "quantity": 0}, "bad_quantity", 400),
        ({"sku": "A", "coupon_code": "MISSING"}, "coupon_unknown", 400),
        ({"sku": "A", "coupon_code": "NOTMINE"}, "coupon_not_owned", 400),
        ({"sku": "A", "coupon_code": "OLD"}, "coupon_not_valid", 400),
        ({"sku": "A", "coupon_code": "SPENT"}, "coupon_used", 409),
        ({"sku": "A", "coupon_code": "LIMITED"}, "coupon_exhausted", 409),
        ({"sku": "A", "points": 5000}, "too_many_points", 400),
        ({"sku": "A", "points": 1500}, "insufficient_points", 409),
        ({"sku": "A", "points": -1}, "bad_points", 400),
    ],
)
def test_place_rejects_bad_input_and_changes_nothing(buyer, kwargs, code, status):
    ProductFactory(sku="A", price=Decimal("20.00"), capacity=10)
    ProductFactory(sku="OFF", is_active=False)
    ProductFactory(sku="FULL", capacity=1, seats_taken=1)
    CouponFactory(code="NOTMINE")
    give_coupon(buyer, CouponFactory(code="OLD", valid_until=timezone.now() - timedelta(days=1)))
    spent = give_coupon(buyer, CouponFactory(code="SPENT"))
    UserCoupon.objects.filter(pk=spent.pk).update(status=UserCoupon.Status.USED)
    give_coupon(buyer, CouponFactory(code="LIMITED", usage_limit=1, times_used=1))
    # A coupon the user holds and could use, so a failure after reserving it would show.
    give_coupon(buyer, CouponFactory(code="GOOD"))
    before = {
        "seats": list(Product.objects.order_by("sku").values_list("sku", "seats_taken")),
        "coupons": list(UserCoupon.objects.order_by("id").values_list("status", flat=True)),
        "used": list(Coupon.objects.order_by("code").values_list("times_used", flat=True)),
        "ledger": LedgerEntry.objects.count(),
    }
    sku, quantity = kwargs.pop("sku"), kwargs.pop("quantity", 1)

    with pytest.raises(OrderError) as caught:
        place(buyer, sku, quantity=quantity, **kwargs)

    assert (caught.value.code, caught.value.status) == (code, status)
    assert Order.objects.count() == 0
    assert before == {
        "seats": list(Product.objects.order_by("sku").values_list("sku", "seats_taken")),
        "coupons": list(UserCoupon.objects.order_by("id").values_list("status", flat=True)),
        "used": list(Coupon.objects.order_by("code").values_list("times_used", flat=True)),
        "ledger": LedgerEntry.objects.count(),
    }
    assert balance(buyer) == 1000


def test_points_failure_after_seats_and_coupon_rolls_everything_back(buyer):
    product = ProductFactory(sku="A", price=Decimal("50.00"), capacity=3)
    held = give_coupon(buyer, CouponFactory(code="FIVE"))
    with pytest.raises(OrderError, match="balance"):
        place(buyer, "A", coupon_code="FIVE", points=2000)  # 20.00 fits the total, but the balance is 1000
    product.refresh_from_db()
    held.refresh_from_db()
    assert (product.seats_taken, held.status, Coupon.objects.get().times_used) == (0, "unused", 0)
    assert Order.objects.count() == 0


def test_capacity_is_never_exceeded(buyer):
    product = ProductFactory(sku="LTD", capacity=2)
    place(buyer, "LTD")
    place(buyer, "LTD")
    with pytest.raises(OrderError, match="seats"):
        place(buyer, "LTD")
    product.refresh_from_db()
    assert (product.seats_taken, Order.objects.count()) == (2, 2)


def test_order_fully_covered_by_points_is_paid_at_once(buyer, on_commit, monkeypatch):
    ProductFactory(sku="A", price=Decimal("5.00"))
    fulfils = []
    monkeypatch.setattr("orders.tasks.order_fulfil_task.apply_async", lambda **kw: fulfils.append(kw))
    with on_commit(execute=True):
        order = place(buyer, "A", points=500)
    assert (order.status, order.total) == (S.PAID, Decimal("0.00"))
    assert fulfils == [{"kwargs": {"order_id": order.pk}, "eta": None}]


def test_transitions_are_declared_once_and_refuse_anything_else(buyer):
    assert len(TRANSITIONS) == 6
    ProductFactory(sku="A")
    order = place(buyer, "A")
    Order.objects.filter(pk=order.pk).update(status=S.EXPIRED)
    from django.db import transaction

    with transaction.atomic():
        assert order_transition(order_id=order.pk, to_status=S.PAID, source="test") is None
        assert order_transition(order_id=order.pk, to_status=S.FULFILLED, source="test") is None
    with pytest.raises(ValueError, match="no transition"):
        order_transition(order_id=order.pk, to_status=S.PENDING, source="test")
    assert Order.objects.get(pk=order.pk).status == S.EXPIRED


def test_expire_gives_back_seats_coupon_and_points_exactly_once(buyer):
    product = ProductFactory(sku="A", capacity=5)
    held = give_coupon(buyer, CouponFactory(code="FIVE"))
    order = place(buyer, "A", coupon_code="FIVE", points=300)
    later = order.expires_at + timedelta(seconds=1)

    assert order_expire(order_id=order.pk, now=order.expires_at - timedelta(seconds=1)) is False  # not yet
    assert order_expire(order_id=order.pk, now=later) is True
    assert order_expire(order_id=order.pk, now=later) is False
    assert order_expire_overdue(now=later) == 0

    order.refresh_from_db()
    product.refresh_from_db()
    held.refresh_from_db()
    assert (order.status, order.expired_at) == (S.EXPIRED, later)
    assert (product.seats_taken, held.status, Coupon.objects.get().times_used) == (0, "unused", 0)
    assert balance(buyer) == 1000
    assert list(LedgerEntry.objects.filter(order_number=order.number).order_by("id").values_list("kind", "amount")) == [
        ("redeem", -300),
        ("refund", 300),
    ]
    assert list(order.events.values_list("from_status", "to_status", "source")) == [
        ("", S.PENDING, "user"),
        (S.PENDING, S.EXPIRED, "orders.expire"),
    ]


def test_sweeper_expires_overdue_in_bounded_batches_and_leaves_the_rest(buyer):
    product = ProductFactory(sku="A", capacity=10, price=Decimal("1.00"))
    coupon = CouponFactory(code="C", value=Decimal("0.10"))
    orders = []
    for _ in range(5):
        give_coupon(buyer, coupon)
        orders.append(place(buyer, "A", coupon_code="C", points=10))
    fresh = place(buyer, "A")
    Order.objects.filter(pk__in=[o.pk for o in orders]).update(expires_at=timezone.now() - timedelta(minutes=1))

    now = timezone.now()
    assert order_expire_overdue(batch_size=2, now=now) == 2
    assert order_expire_overdue(batch_size=2, now=now) == 2
    assert order_expire_overdue(batch_size=2, now=now) == 1
    assert order_expire_overdue(batch_size=2, now=now) == 0

    assert Order.objects.filter(status=S.EXPIRED).count() == 5
    assert Order.objects.get(pk=fresh.pk).status == S.PENDING
    product.refresh_from_db()
    assert product.seats_taken == 1
    assert UserCoupon.objects.filter(status="unused").count() == 5
    assert Coupon.objects.get().times_used == 0
    assert balance(buyer) == 1000
    assert LedgerEntry.objects.filter(kind="refund").count() == 5
    events = OrderEvent.objects.filter(to_status=S.EXPIRED, source="orders.expire_overdue")
    assert sorted(events.values_list("order_id", flat=True)) == sorted(o.pk for o in orders)
    assert set(events.values_list("from_status", "reason", "created_at", "actor")) == {
        (S.PENDING, "payment deadline passed", now, None)
    }
    assert set(Order.objects.filter(status=S.EXPIRED).values_list("expired_at", flat=True)) == {now}
    assert balances_check() == []


def test_cancel_by_buyer_restores_and_refuses_twice(buyer):
    product = ProductFactory(sku="A", capacity=1)
    order = place(buyer, "A", points=100)
    assert order_cancel(order=order, actor=buyer, reason="changed my mind") is True
    assert order_cancel(order=order, actor=buyer, reason="again") is False
    order.refresh_from_db()
    product.refresh_from_db()
    assert (order.status, order.cancel_reason, product.seats_taken, balance(buyer)) == (
        S.CANCELLED,
        "changed my mind",
        0,
        1000,
    )


def test_payment_marks_paid_uses_coupon_and_queues_fulfilment(buyer, on_commit, monkeypatch):
    ProductFactory(sku="A")
    held = give_coupon(buyer, CouponFactory(code="FIVE"))
    order = place(buyer, "A", coupon_code="FIVE")
    fulfils = []
    monkeypatch.setattr("orders.tasks.order_fulfil_task.apply_async", lambda **kw: fulfils.append(kw))
    with on_commit(execute=True):
        event = pay(order)
    order.refresh_from_db()
    held.refresh_from_db()
    assert (event.outcome, order.status, order.needs_refund, held.status) == ("paid", S.PAID, False, "used")
    assert fulfils == [{"kwargs": {"order_id": order.pk}, "eta": None}]


def test_late_payment_never_revives_an_expired_order(buyer):
    ProductFactory(sku="A", capacity=1)
    order = place(buyer, "A", points=200)
    assert order_expire(order_id=order.pk, now=order.expires_at)
    event = pay(order, event_id="late-1")
    order.refresh_from_db()
    assert (event.outcome, order.status, order.needs_refund) == ("late", S.EXPIRED, True)
    assert Product.objects.get().seats_taken == 0
    assert balance(buyer) == 1000
    assert LedgerEntry.objects.filter(order_number=order.number, kind="refund").count() == 1


def test_second_payment_for_a_paid_order_is_flagged_not_applied_twice(buyer):
    ProductFactory(sku="A")
    order = place(buyer, "A")
    pay(order, event_id="one")
    event = pay(order, event_id="two")
    order.refresh_from_db()
    assert (event.outcome, order.status, order.needs_refund) == ("duplicate", S.PAID, True)
    assert order.events.filter(from_status=S.PENDING, to_status=S.PAID).count() == 1


def test_failed_payment_leaves_the_order_pending(buyer):
    ProductFactory(sku="A")
    order = place(buyer, "A")
    event = pay(order, status="failed")
    order.refresh_from_db()
    assert (event.outcome, order.status, order.needs_refund) == ("failed", S.PENDING, False)


def test_fulfilment_sweeper_takes_over_paid_orders_whose_task_was_lost(buyer):
    ProductFactory(sku="A")
    lost, recent = place(buyer, "A"), place(buyer, "A")
    pay(lost, event_id="lost")  # no on-commit run: the fulfil task never reached a broker
    pay(recent, event_id="recent")
    lost_paid_at = Order.objects.get(pk=lost.pk).paid_at
    Order.objects.filter(pk=recent.pk).update(paid_at=lost_paid_at + FULFIL_GRACE)  # paid two minutes later

    assert order_fulfil_overdue(now=lost_paid_at + FULFIL_GRACE) == 1
    assert order_fulfil_overdue(now=lost_paid_at + FULFIL_GRACE) == 0
    assert dict(Order.objects.values_list("pk", "status")) == {lost.pk: S.FULFILLED, recent.pk: S.PAID}
    assert list(Entitlement.objects.values_list("order_id", flat=True)) == [lost.pk]


def test_fulfil_grants_entitlements_once(buyer):
    first, second = ProductFactory(sku="A"), ProductFactory(sku="B")
    order = order_place(user=buyer, lines=[LineRequest(sku="A", quantity=1), LineRequest(sku="B", quantity=1)])
    assert order_fulfil(order_id=order.pk) is False  # not paid yet
    pay(order)
    assert order_fulfil(order_id=order.pk) is True
    assert order_fulfil(order_id=order.pk) is False
    assert set(Entitlement.objects.values_list("user_id", "product_id", "order_id")) == {
        (buyer.pk, first.pk, order.pk),
        (buyer.pk, second.pk, order.pk),
    }
    assert Order.objects.get(pk=order.pk).status == S.FULFILLED


def test_refund_of_fulfilled_order_revokes_and_restores(buyer):
    product = ProductFactory(sku="A", capacity=3)
    staff = UserFactory(is_staff=True)
    order = place(buyer, "A", points=100)
    pay(order)
    order_fulfil(order_id=order.pk)
    assert order_mark_refunded(order=order, staff_user=staff, reason="asked") is True
    assert order_mark_refunded(order=order, staff_user=staff, reason="asked") is False
    order.refresh_from_db()
    product.refresh_from_db()
    assert (order.status, product.seats_taken, balance(buyer)) == (S.REFUNDED, 0, 1000)
    assert Entitlement.objects.get().revoked_at is not None
    assert order.events.last().actor == staff


def test_refund_clears_the_late_payment_flag(buyer):
    ProductFactory(sku="A")
    staff = UserFactory(is_staff=True)
    order = place(buyer, "A")
    order_expire(order_id=order.pk, now=order.expires_at)
    pay(order)
    assert order_mark_refunded(order=order, staff_user=staff, reason="money returned") is True
    order.refresh_from_db()
    assert (order.status, order.needs_refund, order.refunded_at is not None) == (S.EXPIRED, False, True)
    assert order_mark_refunded(order=order, staff_user=staff, reason="again") is False


def test_refund_of_a_pending_order_is_refused(buyer):
    ProductFactory(sku="A")
    order = place(buyer, "A")
    assert order_mark_refunded(order=order, staff_user=buyer, reason="x") is False
    assert Order.objects.get(pk=order.pk).status == S.PENDING


def test_grab_grants_exactly_capacity_and_refuses_the_rest(on_commit, monkeypatch):
    offer = ProductFactory(sku="EARLY", capacity=5, price=Decimal("0"))
    decided = []
    monkeypatch.setattr("orders.tasks.grab_decide_task.apply_async", lambda **kw: decided.append(kw))
    users = UserFactory.create_batch(7)
    with on_commit(execute=True):
        requests = [grab_request(user=user, sku="EARLY")[0] for user in users]
    assert grab_request(user=users[0], sku="EARLY")[1] is False  # asking twice is the same request
    assert len(decided) == 7
    outcomes = [grab_decide(request_id=call["kwargs"]["request_id"]) for call in decided]
    assert outcomes == ["granted"] * 5 + ["refused"] * 2
    assert grab_decide(request_id=requests[0].pk) == "granted"  # a redelivered task changes nothing
    offer.refresh_from_db()
    assert offer.seats_taken == 5
    assert Entitlement.objects.filter(product=offer).count() == 5


def test_grab_needs_a_limited_active_offer(buyer):
    ProductFactory(sku="OPEN")
    with pytest.raises(OrderError) as caught:
        grab_request(user=buyer, sku="OPEN")
    assert caught.value.status == 404


def test_notices_go_to_the_buyers_email_and_phone(buyer, monkeypatch):
    from orders.services import order_notify

    ProductFactory(sku="A")
    queued = []
    monkeypatch.setattr("orders.services.notify.email_queue", lambda **kw: queued.append(("email", kw)))
    monkeypatch.setattr("orders.services.notify.sms_queue", lambda **kw: queued.append(("sms", kw)))
    with_phone = place(buyer, "A", phone="+15551234567")
    silent_user = UserFactory(email="")
    silent = place(silent_user, "A")

    assert order_notify(order_ids=[with_phone.pk, silent.pk], event="expired") == 2

    text = (
        f"Order {with_phone.number} was not paid in time and has expired; "
        "the points and coupon it used are yours again."
    )
    assert queued == [
        ("email", {"to": buyer.email, "subject": f"Order {with_phone.number} has expired", "body": text}),
        ("sms", {"phone": "+15551234567", "message": text}),
    ]


def test_batch_transition_moves_only_from_the_sources_the_table_allows_and_refuses_a_row_that_moved(buyer):
    from django.db import transaction

    from orders.services import orders_transition_many

    ProductFactory(sku="A")
    pending, paid, moved_behind = place(buyer, "A"), place(buyer, "A"), place(buyer, "A")
    Order.objects.filter(pk=paid.pk).update(status=S.PAID)
    now = timezone.now()

    with transaction.atomic():
        moved = orders_transition_many(
            claimed={pending.pk: S.PENDING, paid.pk: S.PAID}, to_status=S.EXPIRED, source="test", reason="r", now=now
        )
    assert moved == {S.PENDING: [pending.pk]}  # paid -> expired is not in TRANSITIONS: left alone
    assert dict(Order.objects.values_list("pk", "status")) == {
        pending.pk: S.EXPIRED,
        paid.pk: S.PAID,
        moved_behind.pk: S.PENDING,
    }
    assert list(OrderEvent.objects.filter(source="test").values_list("order_id", "from_status", "to_status")) == [
        (pending.pk, S.PENDING, S.EXPIRED)
    ]

    Order.objects.filter(pk=moved_behind.pk).update(status=S.CANCELLED)  # not what the caller read under its lock
    with pytest.raises(RuntimeError, match="moved 0 of 1"), transaction.atomic():
        orders_transition_many(claimed={moved_behind.pk: S.PENDING}, to_status=S.EXPIRED, source="test", reason="r")
    assert Order.objects.get(pk=moved_behind.pk).status == S.CANCELLED
    with pytest.raises(ValueError, match="no transition"):
        orders_transition_many(claimed={pending.pk: S.EXPIRED}, to_status=S.PENDING, source="test", reason="r")


def test_sweeper_gives_back_the_seats_and_coupons_of_several_products_and_coupons_in_one_batch():
    first, second = UserFactory(), UserFactory()
    give_points(first, 100)
    give_points(second, 100)
    course = ProductFactory(sku="A", capacity=10, price=Decimal("5.00"))
    book = ProductFactory(sku="B", capacity=10, price=Decimal("5.00"))
    open_ended = ProductFactory(sku="C", capacity=None, price=Decimal("5.00"))
    save, more = CouponFactory(code="SAVE", value=Decimal("1.00")), CouponFactory(code="MORE", value=Decimal("2.00"))
    give_coupon(first, save)
    give_coupon(second, more)
    give_coupon(second, save)
    orders = [
        order_place(user=first, lines=[LineRequest("A", 2), LineRequest("B", 1)], coupon_code="SAVE", points=30),
        order_place(user=second, lines=[LineRequest("B", 3), LineRequest("C", 1)], coupon_code="MORE", points=20),
        order_place(user=second, lines=[LineRequest("A", 1)], coupon_code="SAVE"),
    ]
    assert (Product.objects.get(sku="A").seats_taken, Product.objects.get(sku="B").seats_taken) == (3, 4)
    kept = order_place(user=first, lines=[LineRequest("A", 1)])
    Order.objects.filter(pk__in=[o.pk for o in orders]).update(expires_at=timezone.now() - timedelta(minutes=1))

    assert order_expire_overdue() == 3

    for product in (course, book, open_ended):
        product.refresh_from_db()
    assert (course.seats_taken, book.seats_taken, open_ended.seats_taken) == (1, 0, 0)  # `kept` holds one
    assert dict(Coupon.objects.values_list("code", "times_used")) == {"SAVE": 0, "MORE": 0}
    assert set(UserCoupon.objects.values_list("status", flat=True)) == {"unused"}
    assert (balance(first), balance(second)) == (100, 100)
    assert Order.objects.get(pk=kept.pk).status == S.PENDING
    assert balances_check() == []
