"""Fulfilment: a paid order grants one entitlement per product, once; a sweeper takes over the orders whose
fulfilment message was lost."""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from orders.models import Entitlement, Order
from orders.services.transitions import order_transition

# A paid order is normally fulfilled within seconds by the task its payment queued; one still paid after this
# long lost that message (a broker outage), and the fulfilment sweeper takes it over.
FULFIL_GRACE = timedelta(minutes=2)
FULFIL_SWEEP_BATCH_SIZE = 200  # fulfilled one by one (each grants entitlements): a sweep stays short
Status = Order.Status


def order_fulfil(*, order_id: int) -> bool:
    """paid -> fulfilled, granting one entitlement per product. Idempotent: False once done."""
    with transaction.atomic(durable=True):
        if not order_transition(
            order_id=order_id, to_status=Status.FULFILLED, source="orders.fulfil", reason="entitlements granted"
        ):
            return False
        order = Order.objects.get(pk=order_id)
        Entitlement.objects.bulk_create(
            Entitlement(user_id=order.user_id, product_id=product_id, order=order)
            for product_id in order.lines.values_list("product_id", flat=True)
        )
    return True


def order_fulfil_overdue(*, now: datetime | None = None, batch_size: int = FULFIL_SWEEP_BATCH_SIZE) -> int:
    """Fulfil paid orders whose fulfilment task never ran (the broker is not a database); returns how many."""
    cutoff = (now or timezone.now()) - FULFIL_GRACE
    stuck = Order.objects.filter(status=Status.PAID, paid_at__lte=cutoff).order_by("paid_at", "id")
    return sum(order_fulfil(order_id=order_id) for order_id in stuck.values_list("id", flat=True)[:batch_size])
