"""`manage.py demo_traffic` against a real gunicorn: demo customers signed in, check-ins, orders and payments
through the real HTTP endpoints."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.slow


def test_demo_traffic_drives_the_real_endpoints(live_web):
    from orders.models import Order, PaymentEvent, Product
    from points.models import CheckIn

    Product.objects.create(sku="course-1", name="Course", price=Decimal("12.50"))
    out = StringIO()

    call_command(
        "demo_traffic",
        base_url=live_web.url,
        rate=50,
        users=3,
        requests=60,
        seed=7,
        pay_delay=0.0,
        stdout=out,
    )

    lines = out.getvalue().splitlines()
    sent = [line for line in lines if line.split(" ")[0] in {"checkin", "me", "order", "pay"}]
    assert len(sent) == 60
    statuses = set(sent)
    assert statuses <= {"checkin 200", "me 200", "order 201", "pay 200"}, statuses
    orders = Order.objects.filter(user__username__startswith="demo-customer-")
    assert orders.count() == sum(1 for line in sent if line == "order 201") > 0
    paid = PaymentEvent.objects.filter(outcome=PaymentEvent.Outcome.PAID).count()
    assert paid == sum(1 for line in sent if line == "pay 200") > 0
    assert orders.filter(status__in=["paid", "fulfilled"]).count() == paid
    assert "checkin 200" in statuses
    assert 1 <= CheckIn.objects.filter(user__username__startswith="demo-customer-").count() <= 3  # one a day each


def test_demo_traffic_refuses_a_zero_rate(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="must be positive"):
        call_command("demo_traffic", rate=0)


def test_demo_traffic_stops_ordering_what_sold_out(live_web):
    """`make demo` behaves like a shop: once a product is sold out, customers order the others."""
    from orders.models import Order, Product

    Product.objects.create(sku="last-seat", name="One seat", price=Decimal("5.00"), capacity=1)
    Product.objects.create(sku="plenty", name="Open course", price=Decimal("5.00"))
    out = StringIO()

    call_command(
        "demo_traffic", base_url=live_web.url, rate=50, users=3, requests=80, seed=3, pay_delay=0.0, stdout=out
    )

    sent = out.getvalue().splitlines()
    assert sent.count("order 409") <= 1  # the one answer that says it sold out
    assert Order.objects.filter(lines__product__sku="last-seat").count() == 1
    assert Order.objects.filter(lines__product__sku="plenty").count() > 1
