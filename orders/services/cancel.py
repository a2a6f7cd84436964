"""Undoing an order: the buyer or staff cancel a pending one; staff record the refund of a paid or fulfilled one
(or of a late payment). Seats, coupon and points go back through orders.services.release."""

from django.db import transaction
from django.utils import timezone

from orders.models import Entitlement, Order
from orders.services.events import event_record
from orders.services.release import orders_release, release_row
from orders.services.transitions import order_transition

Status = Order.Status


def order_cancel(*, order: Order, actor, reason: str, source: str = "user") -> bool:
    """pending -> cancelled by the buyer or staff, giving back seats, coupon and points. True if it won."""
    with transaction.atomic(durable=True):
        if not order_transition(
            order_id=order.pk,
            to_status=Status.CANCELLED,
            source=source,
            actor=actor,
            reason=reason,
            extra={"cancel_reason": reason[:300]},
        ):
            return False
        orders_release(orders=[release_row(order)], reason=f"order {order.number} cancelled")
    return True


def order_mark_refunded(*, order: Order, staff_user, reason: str) -> bool:
    """Staff record a refund: a paid or fulfilled order becomes refunded (seats and points given back,
    entitlements revoked); an expired or cancelled order flagged for a late payment has its flag cleared."""
    now = timezone.now()
    with transaction.atomic(durable=True):
        if order_transition(
            order_id=order.pk,
            to_status=Status.REFUNDED,
            source="staff",
            actor=staff_user,
            reason=reason,
            now=now,
            extra={"needs_refund": False},
        ):
            orders_release(orders=[release_row(order)], reason=f"order {order.number} refunded", coupons=False)
            Entitlement.objects.filter(order=order, revoked_at__isnull=True).update(revoked_at=now)
            return True
        current = Order.objects.select_for_update().get(pk=order.pk)
        if not current.needs_refund:
            return False
        Order.objects.filter(pk=order.pk).update(needs_refund=False, refunded_at=now)
        event_record(
            order_id=order.pk,
            from_status=current.status,
            to_status=current.status,
            source="staff",
            actor=staff_user,
            reason=f"late payment refunded: {reason}",
        )
    return True
