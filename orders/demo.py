"""Demo data for `setup_portal --demo`: products (one limited to 5 seats, the early-access grab), coupons,
buyers with points, and orders in every state over the last ten days, all made through the services. Installed
once."""

from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.utils import timezone

from backoffice.demo_clock import clock_at
from orders.models import Coupon, Order, Product, UserCoupon
from orders.services import (
    LineRequest,
    order_cancel,
    order_expire,
    order_fulfil,
    order_mark_refunded,
    order_place,
    payment_record,
)
from points.services import points_adjust

PRODUCTS = [
    ("COURSE-PY", "Python for the web (course, 30 places)", Decimal("49.00"), 30),
    ("COURSE-DJ", "Django in depth (course)", Decimal("29.00"), None),
    ("EARLY-ACCESS", "Early access: the first 5 get in", Decimal("0.00"), 5),
    # Enough seats that `make demo`'s customers keep buying for a long while (they stop ordering what sold out).
    ("WORKSHOP-CELERY", "Celery in production (workshop, 500 places)", Decimal("19.00"), 500),
    ("EBOOK-ORM", "The Django ORM (e-book)", Decimal("9.00"), None),
]
COUPONS = [
    ("WELCOME5", Coupon.Kind.AMOUNT, Decimal("5.00"), None),
    ("SPRING10", Coupon.Kind.PERCENT, Decimal("10"), 100),
]


def demo_install(*, stdout) -> None:
    for sku, name, price, capacity in PRODUCTS:
        Product.objects.get_or_create(sku=sku, defaults={"name": name, "price": price, "capacity": capacity})
    for code, kind, value, limit in COUPONS:
        Coupon.objects.get_or_create(code=code, defaults={"kind": kind, "value": value, "usage_limit": limit})
    user_model = get_user_model()
    if user_model.objects.filter(username="demo-buyer-1").exists():
        stdout.write("orders demo: already installed")
        return
    buyers = [user_model.objects.create_user(f"demo-buyer-{i}", f"demo-buyer-{i}@example.com", None) for i in (1, 2, 3)]
    for buyer in buyers:
        points_adjust(user_id=buyer.pk, amount=1000, reason="demo balance", idempotency_key=f"demo:{buyer.username}")
        for code, *_ in COUPONS:
            UserCoupon.objects.create(user=buyer, coupon=Coupon.objects.get(code=code))
    first, second, third = buyers
    staff = user_model.objects.filter(is_superuser=True).first()
    now = timezone.now()

    def place(buyer, sku, *, coupon="", points=0, placed=None) -> Order:
        return order_place(
            user=buyer,
            lines=[LineRequest(sku=sku, quantity=1)],
            coupon_code=coupon,
            points=points,
            now=placed or timezone.now(),
        )

    def pay(order, event_id):
        payment_record(
            event_id=event_id,
            order_number=order.number,
            amount=order.total,
            provider_status="succeeded",
            raw_body="{}",
            signed_at=timezone.now(),
        )

    place(first, "COURSE-PY", coupon="WELCOME5", points=200)  # pending
    # The others over the last days, each as of its day, so the dashboard's per-day chart shows a history.
    with clock_at(now - timedelta(days=9)):
        paid = place(second, "COURSE-DJ")
        pay(paid, "demo-evt-paid")
    with clock_at(now - timedelta(days=7)):
        fulfilled = place(third, "COURSE-PY", coupon="SPRING10")
        pay(fulfilled, "demo-evt-fulfilled")
        order_fulfil(order_id=fulfilled.pk)
    with clock_at(now - timedelta(days=5)):
        overdue = timezone.now() - timedelta(hours=1)
        expired = place(second, "COURSE-PY", coupon="WELCOME5", points=100, placed=overdue)
        order_expire(order_id=expired.pk)
    with clock_at(now - timedelta(days=4)):
        late = place(third, "COURSE-DJ", placed=timezone.now() - timedelta(hours=1))
        order_expire(order_id=late.pk)
        pay(late, "demo-evt-late")  # arrives after expiry: recorded and flagged for refund
    with clock_at(now - timedelta(days=2)):
        cancelled = place(first, "COURSE-DJ", points=50)
        order_cancel(order=cancelled, actor=first, reason="changed my mind")
    with clock_at(now - timedelta(days=1)):
        refunded = place(first, "COURSE-PY")
        pay(refunded, "demo-evt-refunded")
        order_fulfil(order_id=refunded.pk)
        if staff:
            order_mark_refunded(order=refunded, staff_user=staff, reason="demo refund")
    stdout.write(f"orders demo: {Order.objects.count()} orders for {len(buyers)} buyers")
