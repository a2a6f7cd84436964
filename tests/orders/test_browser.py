"""Headless Chromium: an operator finds the order flagged for refund and marks it refunded from the admin."""

from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry

from backoffice.accounts.roles import OPERATORS
from orders.models import Order
from orders.services import LineRequest, order_expire, order_place, payment_record
from tests.accounts.staff import PASSWORD, staff_user
from tests.browser import admin_login
from tests.orders.factories import ProductFactory, UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_an_operator_filters_orders_needing_a_refund_and_marks_one_refunded(live_server, page):
    ProductFactory(sku="COURSE", price=Decimal("10.00"))
    buyer = UserFactory()
    pending = order_place(user=buyer, lines=[LineRequest(sku="COURSE", quantity=1)])
    late = order_place(user=buyer, lines=[LineRequest(sku="COURSE", quantity=1)])
    order_expire(order_id=late.pk, now=late.expires_at)
    payment_record(
        event_id="evt-late", order_number=late.number, amount=late.total, provider_status="succeeded",
        raw_body="{}", signed_at=late.expires_at,
    )  # fmt: skip
    operator = staff_user("operator", role=OPERATORS)
    admin_login(page, live_server.url, "operator", PASSWORD)

    page.goto(f"{live_server.url}/admin/orders/order/")
    page.click("#changelist-filter >> text=Yes")  # needs refund: yes
    page.wait_for_url("**needs_refund__exact=1**")
    page.wait_for_selector("#result_list tbody tr")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert late.number in rows.first.text_content()

    rows.first.locator("input.action-select").check()
    page.select_option("select[name=action]", "mark_refunded")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist")
    assert "1 order marked refunded." in page.text_content(".messagelist")

    late.refresh_from_db()
    assert (late.status, late.needs_refund) == ("expired", False)
    assert Order.objects.get(pk=pending.pk).status == "pending"
    assert LogEntry.objects.get().user == operator


def test_an_operator_cancels_a_pending_order_with_the_button_on_its_page(live_server, page):
    ProductFactory(sku="COURSE", price=Decimal("10.00"), capacity=5)
    pending = order_place(user=UserFactory(), lines=[LineRequest(sku="COURSE", quantity=1)])
    operator = staff_user("operator", role=OPERATORS)
    page.set_viewport_size({"width": 1440, "height": 900})
    admin_login(page, live_server.url, "operator", PASSWORD)

    page.goto(f"{live_server.url}/admin/orders/order/{pending.pk}/change/")
    assert page.locator("input[name=_save]").count() == 0
    page.click("#order-cancel")
    page.wait_for_selector(".messagelist")

    assert f"Order {pending.number} cancelled." in page.text_content(".messagelist")
    assert page.locator("#order-cancel").count() == 0  # a cancelled order cannot be cancelled again
    assert Order.objects.get(pk=pending.pk).status == "cancelled"
    assert LogEntry.objects.get().user == operator
