"""Payment: the verified callback moves pending -> paid once; a payment that arrives too late never revives an
order, it is recorded and the order flagged for refund."""

import logging
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from backoffice.errors import AppError
from orders.models import Order, PaymentEvent, UserCoupon
from orders.services.common import enqueue
from orders.services.events import event_record
from orders.services.transitions import order_transition
from orders.tasks import order_fulfil_task, order_notify_task

logger = logging.getLogger("orders.services")
Status = Order.Status


def order_settle(*, order: Order, source: str, reason: str, now: datetime) -> bool:
    """pending -> paid, then the coupon is used for good and fulfilment is queued. Inside a transaction."""
    if not order_transition(order_id=order.pk, to_status=Status.PAID, source=source, reason=reason, now=now):
        return False
    if order.user_coupon_id:
        UserCoupon.objects.filter(pk=order.user_coupon_id, status=UserCoupon.Status.RESERVED).update(
            status=UserCoupon.Status.USED
        )
    enqueue(order_fulfil_task, order_id=order.pk)
    enqueue(order_notify_task, order_ids=[order.pk], event="paid")
    return True


class PaymentRejected(AppError):
    """A payment notice that is recorded nowhere (unknown order, wrong amount, replayed event)."""


def payment_record(
    *,
    event_id: str,
    order_number: str,
    amount: Decimal,
    provider_status: str,
    raw_body: str,
    signed_at: datetime,
    now: datetime | None = None,
) -> PaymentEvent:
    """Apply a verified payment callback once. A payment for an order that is no longer pending never
    revives it: it is recorded and the order is flagged for refund."""
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        order = Order.objects.filter(number=order_number).first()
        if order is None:
            raise PaymentRejected("unknown_order", _("No order with this number."), status=404)
        if amount != order.total:
            raise PaymentRejected("amount_mismatch", _("The amount does not match the order."), status=422)
        try:
            with transaction.atomic():  # a concurrent delivery of the same event waits here, then fails
                event = PaymentEvent.objects.create(
                    provider_event_id=event_id,
                    order=order,
                    status=provider_status,
                    amount=amount,
                    raw_body=raw_body,
                    signed_at=signed_at,
                    outcome=PaymentEvent.Outcome.FAILED,
                )
        except IntegrityError:
            raise PaymentRejected("replayed_event", _("This event was already received."), status=409) from None
        if provider_status == "succeeded":
            if order_settle(order=order, source="payment callback", reason=f"payment {event_id}", now=now):
                event.outcome = PaymentEvent.Outcome.PAID
            else:
                order.refresh_from_db(fields=["status"])
                event.outcome = (
                    PaymentEvent.Outcome.DUPLICATE
                    if order.status in (Status.PAID, Status.FULFILLED)
                    else PaymentEvent.Outcome.LATE
                )
                Order.objects.filter(pk=order.pk).update(needs_refund=True)
                event_record(
                    order_id=order.pk,
                    from_status=order.status,
                    to_status=order.status,
                    source="payment callback",
                    reason=f"payment {event_id} arrived while {order.status}: flagged for refund",
                )
                logger.warning("payment %s for order %s (%s) needs a refund", event_id, order.number, order.status)
            event.save(update_fields=["outcome"])
    return event
