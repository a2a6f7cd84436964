from decimal import Decimal

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.test import Client

from backoffice.accounts.roles import ANALYSTS, OPERATORS
from orders.models import Order, PaymentEvent, Product
from orders.services import LineRequest, order_expire, order_place, payment_record
from tests.accounts.staff import staff_user
from tests.orders.factories import ProductFactory, UserFactory, give_points

pytestmark = pytest.mark.django_db


@pytest.fixture
def orders():
    ProductFactory(sku="A", price=Decimal("10.00"), capacity=10)
    buyer = UserFactory(username="alice")
    give_points(buyer, 500)
    pending = order_place(user=buyer, lines=[LineRequest(sku="A", quantity=1)], points=100)
    late = order_place(user=buyer, lines=[LineRequest(sku="A", quantity=1)])
    order_expire(order_id=late.pk, now=late.expires_at)
    payment_record(
        event_id="evt-late",
        order_number=late.number,
        amount=late.total,
        provider_status="succeeded",
        raw_body="{}",
        signed_at=late.expires_at,
    )
    return pending, Order.objects.get(pk=late.pk)


def as_staff(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_changelist_filters_and_search(orders):
    pending, late = orders
    client = as_staff(staff_user("op", role=OPERATORS))
    page = client.get("/admin/orders/order/?needs_refund__exact=1")
    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == [late]
    page = client.get("/admin/orders/order/?status__exact=pending")
    assert list(page.context["cl"].result_list) == [pending]
    page = client.get(f"/admin/orders/order/?q={pending.number}")
    assert list(page.context["cl"].result_list) == [pending]
    page = client.get("/admin/orders/order/?q=alice")
    assert set(page.context["cl"].result_list) == {pending, late}
    detail = client.get(f"/admin/orders/order/{late.pk}/change/")
    assert detail.status_code == 200
    assert b"evt-late" in detail.content and b"flagged for refund" in detail.content


def test_cancel_action_calls_the_service_and_writes_the_admin_log(orders):
    pending, late = orders
    operator = staff_user("op", role=OPERATORS)
    response = as_staff(operator).post(
        "/admin/orders/order/", {"action": "cancel_orders", "_selected_action": [pending.pk, late.pk]}, follow=True
    )
    assert response.status_code == 200
    pending.refresh_from_db()
    assert (pending.status, Order.objects.get(pk=late.pk).status) == ("cancelled", "expired")
    assert pending.events.last().actor == operator
    entry = LogEntry.objects.get()
    assert (entry.user, entry.object_id, entry.action_flag) == (operator, str(pending.pk), CHANGE)
    assert "Cancelled by staff" in entry.change_message
    messages = [str(m) for m in response.context["messages"]]
    assert messages == ["1 order cancelled.", "1 order was skipped: its status does not allow this."]


def test_mark_refunded_clears_the_flag_and_is_logged(orders):
    _, late = orders
    operator = staff_user("op", role=OPERATORS)
    as_staff(operator).post("/admin/orders/order/", {"action": "mark_refunded", "_selected_action": [late.pk]})
    late.refresh_from_db()
    assert (late.needs_refund, late.refunded_at is not None) == (False, True)
    assert LogEntry.objects.get().object_id == str(late.pk)


def test_analysts_see_orders_but_cannot_act_on_them(orders):
    pending, _ = orders
    analyst = staff_user("an", role=ANALYSTS)
    client = as_staff(analyst)
    page = client.get("/admin/orders/order/")
    assert page.status_code == 200
    assert page.context["action_form"] is None  # no action they may run
    client.post("/admin/orders/order/", {"action": "cancel_orders", "_selected_action": [pending.pk]})
    pending.refresh_from_db()
    assert pending.status == "pending"
    assert LogEntry.objects.count() == 0
    assert client.post(f"/admin/orders/order/{pending.pk}/change/", {}).status_code == 403


def test_payment_events_are_read_only(orders):
    admin = staff_user("root", superuser=True)
    client = as_staff(admin)
    event = PaymentEvent.objects.get()
    assert client.get("/admin/orders/paymentevent/").status_code == 200
    assert client.get("/admin/orders/paymentevent/add/").status_code == 403
    assert client.post(f"/admin/orders/paymentevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert PaymentEvent.objects.count() == 1


def test_orders_export_to_csv(orders):
    """The stock Export button opens the portal's export page (one set of columns and one rendering for
    every export path); Download now streams the CSV there."""
    pending, late = orders
    analyst = staff_user("an", role=ANALYSTS)
    analyst.user_permissions.add(Permission.objects.get(codename="view_order"))
    client = as_staff(analyst)
    handed = client.get("/admin/orders/order/export/?status__exact=pending")
    assert handed.status_code == 302 and handed["Location"] == "/admin/exports/new/orders/?status__exact=pending"
    columns = ["number", "status", "total", "needs_refund"]
    response = client.post("/admin/exports/new/orders/", {"columns": columns, "stream": "1", "query_string": ""})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = b"".join(response.streaming_content).decode().split("\r\n")
    assert rows[0] == "Number,Status,Total,Needs refund" and rows[-1] == ""

    def number(order):  # an order number that starts with a digit stays text in a spreadsheet
        return f"'{order.number}" if order.number[0].isdigit() else order.number

    assert sorted(rows[1:-1]) == sorted(
        [
            f"{number(pending)},{Order.Status.PENDING.label},9.00,FALSE",
            f"{number(late)},{Order.Status.EXPIRED.label},10.00,TRUE",
        ]
    )


def product_form(product, **changes):
    data = {
        "sku": product.sku,
        "name": product.name,
        "price": str(product.price),
        "is_active": "on",
        "capacity": product.capacity or "",
    }
    data.update(changes)
    return data


def test_editing_a_product_never_writes_back_a_stale_seat_count(orders):
    operator = staff_user("op", role=OPERATORS)
    client = as_staff(operator)
    product = Product.objects.get(sku="A")
    stale = product_form(product, name="Renamed")
    Product.objects.filter(pk=product.pk).update(seats_taken=5)  # orders placed while the form was open
    response = client.post(f"/admin/orders/product/{product.pk}/change/", stale)
    assert response.status_code == 302
    product.refresh_from_db()
    assert (product.name, product.seats_taken) == ("Renamed", 5)


def test_capacity_below_the_seats_taken_is_a_form_error(orders):
    client = as_staff(staff_user("op", role=OPERATORS))
    product = Product.objects.get(sku="A")  # one seat held by the pending order
    response = client.post(f"/admin/orders/product/{product.pk}/change/", product_form(product, capacity="0"))
    assert response.status_code == 200
    assert "capacity" in response.context["adminform"].form.errors
    product.refresh_from_db()
    assert product.capacity == 10


def test_the_order_page_says_needs_refund_only_for_the_order_that_needs_one(orders):
    pending, late = orders
    client = as_staff(staff_user("op", role=OPERATORS))

    pending_page = client.get(f"/admin/orders/order/{pending.pk}/change/").content.decode()
    late_page = client.get(f"/admin/orders/order/{late.pk}/change/").content.decode()

    assert "A payment arrived that the order could not accept" not in pending_page
    assert "a payment arrived that the order could not accept" in late_page


def test_the_order_page_offers_the_buttons_its_status_allows_and_no_save(orders):
    pending, late = orders
    client = as_staff(staff_user("root", superuser=True))

    pending_page = client.get(f"/admin/orders/order/{pending.pk}/change/").content.decode()
    late_page = client.get(f"/admin/orders/order/{late.pk}/change/").content.decode()

    assert 'id="order-cancel"' in pending_page and 'id="order-refund"' not in pending_page
    assert 'id="order-refund"' in late_page and 'id="order-cancel"' not in late_page
    assert 'name="_save"' not in pending_page and 'name="_continue"' not in pending_page


def test_the_cancel_button_cancels_the_order_and_writes_the_admin_log(orders):
    pending, _ = orders
    operator = staff_user("op", role=OPERATORS)

    response = as_staff(operator).post(f"/admin/orders/order/{pending.pk}/cancel/", follow=True)

    assert response.redirect_chain == [(f"/admin/orders/order/{pending.pk}/change/", 302)]
    pending.refresh_from_db()
    assert pending.status == "cancelled"
    assert pending.events.last().actor == operator
    entry = LogEntry.objects.get()
    assert (entry.user, entry.object_id, entry.change_message) == (
        operator,
        str(pending.pk),
        "Cancelled by staff (order_cancel).",
    )
    assert [str(m) for m in response.context["messages"]] == [f"Order {pending.number} cancelled."]


def test_the_refund_button_on_a_cancelled_order_changes_nothing_and_says_why(orders):
    pending, _ = orders
    client = as_staff(staff_user("op", role=OPERATORS))
    client.post(f"/admin/orders/order/{pending.pk}/cancel/")

    response = client.post(f"/admin/orders/order/{pending.pk}/refund/", follow=True)

    assert Order.objects.get(pk=pending.pk).status == "cancelled"
    assert LogEntry.objects.count() == 1  # the cancel only
    assert "its status (cancelled) does not allow this" in str(list(response.context["messages"])[-1])


def test_analysts_get_no_buttons_and_a_403_from_the_button_urls(orders):
    pending, late = orders
    client = as_staff(staff_user("an", role=ANALYSTS))

    page = client.get(f"/admin/orders/order/{pending.pk}/change/").content.decode()

    assert 'id="order-cancel"' not in page
    assert client.post(f"/admin/orders/order/{pending.pk}/cancel/").status_code == 403
    assert client.post(f"/admin/orders/order/{late.pk}/refund/").status_code == 403
    assert Order.objects.get(pk=pending.pk).status == "pending"
    assert LogEntry.objects.count() == 0


def test_the_button_urls_answer_only_post(orders):
    pending, _ = orders
    client = as_staff(staff_user("op", role=OPERATORS))

    assert client.get(f"/admin/orders/order/{pending.pk}/cancel/").status_code == 405
    assert client.post("/admin/orders/order/999999/cancel/").status_code == 404
    assert Order.objects.get(pk=pending.pk).status == "pending"
