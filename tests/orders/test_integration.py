"""Through a real worker and real Redis: the full flow, the sweeper after Redis lost every ETA message, and
the early-access grab decided by tasks while the client polls."""

import json
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from orders.models import Entitlement, Order, Product
from orders.services import LineRequest, order_place
from orders.tasks import order_expire_overdue_task
from points.models import Account
from tests import processes
from tests.orders.factories import ProductFactory, UserFactory, callback_body, give_points, signed_post
from tests.processes import wait_for

pytestmark = pytest.mark.slow


def test_place_pay_fulfil_entitlement_through_a_real_worker(live_worker):
    product = ProductFactory(sku="COURSE", price=Decimal("12.50"), capacity=30)
    buyer = UserFactory()
    give_points(buyer, 250)
    client = Client()
    client.force_login(buyer)

    response = client.post(
        "/api/orders/",
        data=json.dumps({"lines": [{"sku": "COURSE", "quantity": 1}], "points": 250}),
        content_type="application/json",
    )
    assert response.status_code == 201
    order = Order.objects.get(number=response.json()["number"])
    assert (order.status, order.total) == ("pending", Decimal("10.00"))

    paid = signed_post(Client(), callback_body(order, event_id="evt-flow"))
    assert paid.json() == {"received": True, "outcome": "paid"}

    wait_for(lambda: Order.objects.get(pk=order.pk).status == "fulfilled", timeout=30, message="fulfilment")
    entitlement = Entitlement.objects.get(order=order)
    assert (entitlement.user_id, entitlement.product_id, entitlement.revoked_at) == (buyer.pk, product.pk, None)
    assert Account.objects.get(user=buyer).balance == 0
    assert list(Order.objects.get(pk=order.pk).events.values_list("to_status", "source")) == [
        ("pending", "user"),
        ("paid", "payment callback"),
        ("fulfilled", "orders.fulfil"),
    ]


@pytest.mark.skipif(settings.BROKER_IS_AMQP, reason="loses the ETA messages by flushing Redis, the broker here")
def test_sweeper_expires_every_overdue_order_after_redis_lost_the_eta_messages(
    transactional_db, redis_client, tmp_path
):
    ProductFactory(sku="COURSE", capacity=40)
    buyer = UserFactory()
    give_points(buyer, 2000)
    client = Client()
    client.force_login(buyer)
    for _ in range(25):
        response = client.post(
            "/api/orders/",
            data=json.dumps({"lines": [{"sku": "COURSE", "quantity": 1}], "points": 50}),
            content_type="application/json",
        )
        assert response.status_code == 201
    assert redis_client.llen("orders") == 25  # one ETA expiry message per order, waiting in the queue

    redis_client.flushdb()  # the broker loses every message (FLUSHALL, scoped to the test's Redis database)
    assert redis_client.llen("orders") == 0
    Order.objects.update(expires_at=timezone.now())

    worker = processes.worker(tmp_path)
    try:
        order_expire_overdue_task.apply_async(kwargs={"batch_size": 10})  # full batches re-enqueue the sweep
        wait_for(lambda: not Order.objects.filter(status="pending").exists(), timeout=60, message="the sweep")
    finally:
        worker.stop()
    assert Order.objects.filter(status="expired").count() == 25
    assert Account.objects.get(user=buyer).balance == 2000
    assert Product.objects.get().seats_taken == 0


def test_grab_through_a_real_worker_grants_exactly_five(live_worker):
    ProductFactory(sku="EARLY", capacity=5, price=Decimal("0"))
    clients = []
    for _ in range(9):
        client = Client()
        client.force_login(UserFactory())
        assert client.post("/api/grab/EARLY/").status_code == 202
        clients.append(client)

    def decided():
        states = [client.get("/api/grab/EARLY/").json()["status"] for client in clients]
        return states if "pending" not in states else None

    states = wait_for(decided, timeout=30, message="every grab decided")
    assert sorted(states) == ["granted"] * 5 + ["refused"] * 4
    assert Entitlement.objects.filter(product__sku="EARLY").count() == 5


def test_eta_fast_path_expires_the_order_at_its_deadline(live_worker, settings):
    settings.ORDER_PAYMENT_TIMEOUT_MINUTES = 0  # the deadline is now: the ETA message is due at once
    ProductFactory(sku="COURSE", capacity=3)
    buyer = UserFactory()
    give_points(buyer, 100)
    order = order_place(user=buyer, lines=[LineRequest(sku="COURSE", quantity=1)], points=100)

    wait_for(lambda: Order.objects.get(pk=order.pk).status == "expired", timeout=30, message="the ETA expiry")
    assert list(Order.objects.get(pk=order.pk).events.values_list("to_status", "source")) == [
        ("pending", "user"),
        ("expired", "orders.expire"),  # the ETA task, not the sweeper
    ]
    assert Account.objects.get(user=buyer).balance == 100
    assert Product.objects.get().seats_taken == 0
