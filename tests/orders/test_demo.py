import io
from collections import Counter

import pytest
from django.utils import timezone

from orders.demo import demo_install
from orders.models import Order, Product
from points.services import balances_check

pytestmark = pytest.mark.django_db


def test_demo_installs_orders_in_every_state_once(django_user_model):
    django_user_model.objects.create_superuser("admin", "admin@example.com", "pw")
    demo_install(stdout=io.StringIO())
    demo_install(stdout=io.StringIO())

    assert Counter(Order.objects.values_list("status", flat=True)) == {
        "pending": 1,
        "paid": 1,
        "fulfilled": 1,
        "expired": 2,
        "cancelled": 1,
        "refunded": 1,
    }
    assert Order.objects.filter(needs_refund=True).count() == 1
    assert Product.objects.get(sku="EARLY-ACCESS").capacity == 5
    # Seats held: the pending, paid (unlimited product) and fulfilled orders of the limited course.
    assert Product.objects.get(sku="COURSE-PY").seats_taken == 2
    assert balances_check() == []


def test_demo_orders_spread_over_the_last_days(django_user_model):
    """The orders panel charts per day: the demo's orders land on several days, not all on today."""
    from orders.dashboard import orders_panel_figures

    django_user_model.objects.create_superuser("admin", "admin@example.com", "pw")
    demo_install(stdout=io.StringIO())

    figures = orders_panel_figures(now=timezone.now())
    days_with_orders = {day for row in figures["by_status"] for day, count in enumerate(row["counts"]) if count}
    assert len(days_with_orders) >= 5
