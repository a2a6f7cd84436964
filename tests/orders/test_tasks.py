from datetime import timedelta

import pytest
from django.utils import timezone

from orders.models import Order
from orders.services import LineRequest, order_place
from orders.tasks import order_expire_overdue_task, order_expire_task, order_fulfil_task
from tests.orders.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def overdue():
    ProductFactory(sku="A")
    buyer = UserFactory()
    orders = [order_place(user=buyer, lines=[LineRequest(sku="A", quantity=1)]) for _ in range(3)]
    Order.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    return orders


def test_sweeper_task_reenqueues_itself_while_a_full_batch_came_back(overdue, monkeypatch):
    again = []
    monkeypatch.setattr(order_expire_overdue_task, "apply_async", lambda **kw: again.append(kw))
    assert order_expire_overdue_task.run(batch_size=2) == 2
    assert again == [{"kwargs": {"batch_size": 2}}]
    assert order_expire_overdue_task.run(batch_size=2) == 1
    assert len(again) == 1  # a short batch means the work is done
    assert not Order.objects.filter(status="pending").exists()


def test_eta_task_expires_only_past_the_deadline():
    ProductFactory(sku="A")
    order = order_place(user=UserFactory(), lines=[LineRequest(sku="A", quantity=1)])
    assert order_expire_task.run(order_id=order.pk) is False  # delivered early (the deadline moved): nothing
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now())
    assert order_expire_task.run(order_id=order.pk) is True
    assert order_fulfil_task.run(order_id=order.pk) is False


def test_task_names_route_to_the_orders_queue():
    from backoffice.celery import app

    for name in ("orders.expire", "orders.expire_overdue", "orders.fulfil", "orders.notify", "orders.grab_decide"):
        assert name in app.tasks
        assert app.amqp.router.route({}, name)["queue"].name == "orders"
