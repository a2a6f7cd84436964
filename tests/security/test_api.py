"""What strangers can send to /api/: every bad input is a 4xx in the one JSON error shape, never a 500 and
never an HTML page."""

import json

import pytest
from django.test import Client

from orders.models import Order, PaymentEvent
from tests.orders.factories import ProductFactory, UserFactory, signed_post

pytestmark = pytest.mark.django_db

DEEP = b'{"lines": ' + b"[" * 5_000 + b"]" * 5_000 + b"}"  # past the parser's recursion limit, under 16 KiB
SURROGATE = "\ud800"  # a lone surrogate: valid JSON ("\\ud800"), no valid Unicode


def body_of(response) -> dict:
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) >= {"error", "message"} and isinstance(body["message"], str) and body["message"]
    return body


@pytest.fixture
def buyer(client, settings):
    settings.PAYMENT_WEBHOOK_SECRET = "test-secret"
    user = UserFactory()
    client.force_login(user)
    return user


@pytest.mark.parametrize("url", ["/api/orders/", "/api/sms/code/"])
def test_deeply_nested_json_is_a_400(client, buyer, url):
    response = client.post(url, data=DEEP, content_type="application/json")

    assert (response.status_code, body_of(response)["error"]) == (400, "bad_json")


def test_deeply_nested_json_in_a_signed_payment_callback_is_a_400(client, buyer):
    response = signed_post(client, DEEP)

    assert (response.status_code, body_of(response)["error"]) == (400, "bad_json")
    assert not PaymentEvent.objects.exists()


@pytest.mark.parametrize(
    "data",
    [
        {"lines": [{"sku": SURROGATE, "quantity": 1}]},
        {"lines": [{"sku": "COURSE", "quantity": 1}], "coupon": "FIVE" + SURROGATE},
    ],
    ids=["sku", "coupon"],
)
def test_a_lone_surrogate_in_an_order_is_a_400_and_places_nothing(client, buyer, data):
    ProductFactory(sku="COURSE")

    response = client.post("/api/orders/", data=json.dumps(data), content_type="application/json")

    assert (response.status_code, body_of(response)["error"]) == (400, "bad_text")
    assert not Order.objects.exists()


def test_a_lone_surrogate_in_a_payment_event_id_is_a_400(client, buyer):
    body = json.dumps({"event_id": SURROGATE, "order_number": "X", "amount": "1.00", "status": "succeeded"})

    response = signed_post(client, body.encode())

    assert (response.status_code, body_of(response)["error"]) == (400, "bad_text")
    assert not PaymentEvent.objects.exists()


def test_a_missing_csrf_token_gets_the_json_shape_not_djangos_page():
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory())

    response = client.post("/api/points/checkin/")

    assert (response.status_code, body_of(response)["error"]) == (403, "csrf_failed")


def test_the_admin_keeps_djangos_csrf_page(admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)

    response = client.post("/admin/logout/")

    assert response.status_code == 403 and response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("url", ["/api/nothing-here/", "/api/orders/NOPE/"])
def test_a_404_under_api_is_json(client, buyer, url):
    response = client.get(url)

    assert (response.status_code, body_of(response)["error"]) == (404, "not_found")


def test_a_wrong_method_is_json_and_keeps_allow(client):
    response = client.get("/api/points/checkin/")

    assert (response.status_code, body_of(response)["error"], response["Allow"]) == (405, "method_not_allowed", "POST")


def test_an_application_error_has_the_shape_with_its_status(client, buyer):
    response = client.post("/api/orders/", data={"lines": []}, content_type="application/json")

    assert response.status_code == 400
    assert body_of(response) == {
        "error": "lines_required",
        "message": "An order needs at least one line.",
        "field": "lines",
    }
