import json
import time
from decimal import Decimal

import pytest

from orders.models import Order, PaymentEvent, Product, UserCoupon
from orders.payments import MAX_BODY_BYTES
from points.models import Account, LedgerEntry
from tests.orders.factories import (
    CouponFactory,
    ProductFactory,
    UserFactory,
    callback_body,
    give_coupon,
    give_points,
    signed_post,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def buyer(client):
    user = UserFactory()
    give_points(user, 1000)
    client.force_login(user)
    return user


def post_json(client, url, data):
    return client.post(url, data=json.dumps(data), content_type="application/json")


def test_place_answers_201_with_number_totals_status_and_deadline(client, buyer):
    ProductFactory(sku="COURSE", price=Decimal("30.00"), capacity=30)
    give_coupon(buyer, CouponFactory(code="FIVE"))
    response = post_json(
        client, "/api/orders/", {"lines": [{"sku": "COURSE", "quantity": 1}], "coupon": "FIVE", "points": 100}
    )
    assert response.status_code == 201
    body = response.json()
    order = Order.objects.get()
    assert body == {
        "number": order.number,
        "status": "pending",
        "subtotal": "30.00",
        "discount": "5.00",
        "points": 100,
        "points_value": "1.00",
        "total": "24.00",
        "expires_at": order.expires_at.isoformat(),
        "lines": [{"sku": "COURSE", "quantity": 1, "unit_price": "30.00"}],
    }
    assert client.get(f"/api/orders/{order.number}/").json() == body


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"lines": []}, 400, "lines_required"),
        ({"lines": "COURSE"}, 400, "bad_lines"),
        ({"lines": [{"quantity": 1}]}, 400, "bad_lines"),
        ({"lines": [{"sku": "COURSE", "quantity": "2"}]}, 400, "bad_quantity"),
        ({"lines": [{"sku": "COURSE", "quantity": 1}], "points": 1.5}, 400, "bad_points"),
        ({"lines": [{"sku": "COURSE", "quantity": 1}], "coupon": 7}, 400, "bad_request"),
        ({"lines": [{"sku": "GONE", "quantity": 1}]}, 400, "unknown_product"),
        ({"lines": [{"sku": "COURSE", "quantity": 1}], "coupon": "NOPE"}, 400, "coupon_unknown"),
        ({"lines": [{"sku": "COURSE", "quantity": 1}], "points": 2000}, 409, "insufficient_points"),
        ({"lines": [{"sku": "COURSE", "quantity": 2}, {"sku": "COURSE", "quantity": 1}]}, 400, "duplicate_sku"),
        ({"lines": [{"sku": "COURSE", "quantity": 1}], "phone": "call me"}, 400, "bad_phone"),
    ],
)
def test_place_rejects_bad_input_with_a_4xx_json_body(client, buyer, payload, status, code):
    ProductFactory(sku="COURSE", price=Decimal("30.00"), capacity=30)
    response = post_json(client, "/api/orders/", payload)
    assert (response.status_code, response.json()["error"]) == (status, code)
    assert Order.objects.count() == 0
    assert Product.objects.get().seats_taken == 0
    assert Account.objects.get(user=buyer).balance == 1000


def test_place_rejects_malformed_json(client, buyer):
    response = client.post("/api/orders/", data=b"{nope", content_type="application/json")
    assert (response.status_code, response.json()["error"]) == (400, "bad_json")
    nul = b'{"lines": [{"sku": "A\\u0000", "quantity": 1}]}'
    response = client.post("/api/orders/", data=nul, content_type="application/json")
    assert (response.status_code, response.json()["error"]) == (400, "bad_json")
    response = client.post("/api/orders/", data=b"[1]", content_type="application/json")
    assert (response.status_code, response.json()["error"]) == (400, "bad_json")


def test_orders_need_a_signed_in_user(client):
    assert client.post("/api/orders/", data="{}", content_type="application/json").status_code == 401
    assert client.get("/api/orders/X/").status_code == 401


def test_a_buyer_sees_and_cancels_only_their_own_orders(client, buyer):
    ProductFactory(sku="A", capacity=1)
    other = UserFactory()
    client.force_login(other)
    number = post_json(client, "/api/orders/", {"lines": [{"sku": "A", "quantity": 1}]}).json()["number"]
    client.force_login(buyer)
    assert client.get(f"/api/orders/{number}/").status_code == 404
    assert client.post(f"/api/orders/{number}/cancel/").status_code == 404
    assert Order.objects.get().status == "pending"

    client.force_login(other)
    response = client.post(f"/api/orders/{number}/cancel/")
    assert (response.status_code, response.json()["status"]) == (200, "cancelled")
    response = client.post(f"/api/orders/{number}/cancel/")
    assert (response.status_code, response.json()["error"]) == (409, "not_cancellable")
    assert Product.objects.get().seats_taken == 0


def test_sold_out_is_a_409(client, buyer):
    ProductFactory(sku="A", capacity=1, seats_taken=1)
    response = post_json(client, "/api/orders/", {"lines": [{"sku": "A", "quantity": 1}]})
    assert (response.status_code, response.json()["error"]) == (409, "sold_out")


# -- payment callback -------------------------------------------------------------------------------------
@pytest.fixture
def pending_order(buyer):
    ProductFactory(sku="A", price=Decimal("12.50"), capacity=5)
    held = give_coupon(buyer, CouponFactory(code="ONE", value=Decimal("1.00")))
    from orders.services import LineRequest, order_place

    order = order_place(user=buyer, lines=[LineRequest(sku="A", quantity=1)], coupon_code="ONE", points=150)
    assert (order.total, held.pk) == (Decimal("10.00"), order.user_coupon_id)
    return order


def snapshot(order):
    order.refresh_from_db()
    return {
        "order": (order.status, order.needs_refund, order.paid_at),
        "payments": PaymentEvent.objects.count(),
        "events": order.events.count(),
        "coupon": UserCoupon.objects.get(pk=order.user_coupon_id).status,
        "ledger": LedgerEntry.objects.count(),
        "seats": Product.objects.get().seats_taken,
    }


def test_signed_callback_pays_the_order(client, pending_order):
    response = signed_post(client, callback_body(pending_order, event_id="evt-1", amount="10.00"))
    assert response.status_code == 200
    assert response.json() == {"received": True, "outcome": "paid"}
    pending_order.refresh_from_db()
    assert pending_order.status == "paid"
    event = PaymentEvent.objects.get()
    assert (event.provider_event_id, event.amount, event.order_id) == ("evt-1", Decimal("10.00"), pending_order.pk)
    assert json.loads(event.raw_body)["event_id"] == "evt-1"


@pytest.mark.parametrize(
    "case",
    [
        "bad_signature",
        "wrong_secret",
        "no_header",
        "stale",
        "future",
        "wrong_amount",
        "malformed_json",
        "oversized",
        "nul_in_event_id",
        "not_utf8",
        "missing_field",
        "unknown_order",
        "bad_status",
        "bad_amount",
    ],
)
def test_callback_rejections_get_a_4xx_and_change_nothing(client, pending_order, case):
    before = snapshot(pending_order)
    body = callback_body(pending_order, event_id="evt-x")
    now = int(time.time())
    if case == "bad_signature":
        response = client.post(
            "/api/payments/callback/",
            data=body,
            content_type="application/json",
            headers={"X-Signature": f"t={now},v1={'0' * 64}"},
        )
    elif case == "wrong_secret":
        response = signed_post(client, body, secret="not-the-secret")
    elif case == "no_header":
        response = client.post("/api/payments/callback/", data=body, content_type="application/json")
    elif case == "stale":
        response = signed_post(client, body, timestamp=now - 301)
    elif case == "future":
        response = signed_post(client, body, timestamp=now + 301)
    elif case == "wrong_amount":
        response = signed_post(client, callback_body(pending_order, event_id="evt-x", amount="9.99"))
    elif case == "malformed_json":
        response = signed_post(client, b'{"event_id": "evt-x",')
    elif case == "oversized":
        response = signed_post(client, body + b" " * MAX_BODY_BYTES)
    elif case == "missing_field":
        response = signed_post(client, json.dumps({"event_id": "evt-x", "order_number": pending_order.number}).encode())
    elif case == "unknown_order":
        response = signed_post(
            client,
            json.dumps({"event_id": "e", "order_number": "NOPE", "amount": "10.00", "status": "succeeded"}).encode(),
        )
    elif case == "nul_in_event_id":
        response = signed_post(client, body.replace(b'"evt-x"', b'"evt\\u0000x"'))
    elif case == "not_utf8":
        response = signed_post(client, body.replace(b'"evt-x"', b'"evt-\xff"'))
    elif case == "bad_status":
        response = signed_post(client, callback_body(pending_order, event_id="evt-x", status="maybe"))
    else:
        response = signed_post(
            client,
            json.dumps(
                {"event_id": "e", "order_number": pending_order.number, "amount": 10, "status": "succeeded"}
            ).encode(),
        )
    expected = {
        "bad_signature": 401,
        "wrong_secret": 401,
        "no_header": 401,
        "oversized": 413,
        "wrong_amount": 422,
        "unknown_order": 404,
    }.get(case, 400)
    assert response.status_code == expected
    assert "error" in response.json()
    assert snapshot(pending_order) == before


def test_replayed_event_id_is_rejected_and_changes_nothing(client, pending_order):
    body = callback_body(pending_order, event_id="evt-1")
    assert signed_post(client, body).status_code == 200
    before = snapshot(pending_order)
    response = signed_post(client, body)
    assert (response.status_code, response.json()["error"]) == (409, "replayed_event")
    assert snapshot(pending_order) == before


def test_late_payment_is_recorded_and_flagged(client, pending_order):
    from orders.services import order_expire

    order_expire(order_id=pending_order.pk, now=pending_order.expires_at)
    response = signed_post(client, callback_body(pending_order, event_id="late"))
    assert (response.status_code, response.json()["outcome"]) == (200, "late")
    pending_order.refresh_from_db()
    assert (pending_order.status, pending_order.needs_refund) == ("expired", True)
    assert LedgerEntry.objects.filter(order_number=pending_order.number, kind="refund").count() == 1


def test_callback_is_exempt_from_csrf_but_orders_are_not(buyer):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(buyer)
    assert strict.post("/api/orders/", data="{}", content_type="application/json").status_code == 403
    assert strict.post("/api/payments/callback/", data=b"{}", content_type="application/json").status_code == 401


# -- early-access grab ------------------------------------------------------------------------------------
def test_grab_answers_202_then_the_poll_shows_the_decision(client, buyer, on_commit, monkeypatch):
    ProductFactory(sku="EARLY", capacity=5, price=Decimal("0"))
    queued = []
    monkeypatch.setattr("orders.tasks.grab_decide_task.apply_async", lambda **kw: queued.append(kw))
    with on_commit(execute=True):
        response = client.post("/api/grab/EARLY/")
    assert (response.status_code, response.json()) == (202, {"status": "pending"})
    assert client.get("/api/grab/EARLY/").json() == {"status": "pending"}
    from orders.services import grab_decide

    grab_decide(request_id=queued[0]["kwargs"]["request_id"])
    assert client.get("/api/grab/EARLY/").json() == {"status": "granted"}
    assert client.post("/api/grab/EARLY/").status_code == 200
    assert client.get("/api/grab/OTHER/").status_code == 404
