"""Expiry: pending -> expired once the payment deadline has passed, then seats, coupon and points given back.

The ETA task at the deadline is the fast path (`order_expire`, one order); the sweeper on the beat schedule is
the source of truth (`order_expire_overdue`, a batch). Both move the status through the transition table, and
only the side whose update won gives anything back, exactly once.
"""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from orders.models import Order
from orders.services.common import enqueue
from orders.services.release import RELEASE_FIELDS, orders_release, release_row
from orders.services.transitions import order_transition, orders_transition_many, sources_of
from orders.tasks import order_notify_task

# One batch holds its orders' locks until it commits (a racing payment waits, then loses). Set-based, a batch
# of 1,000 takes well under a second; bigger ones spread the per-statement and commit cost a little further.
EXPIRE_BATCH_SIZE = 1000
EXPIRE_REASON = "payment deadline passed"
Status = Order.Status


def order_expire(*, order_id: int, now: datetime | None = None, source: str = "orders.expire") -> bool:
    """Expire one order if it is still pending past its deadline (the ETA fast path). True if it won."""
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        if not order_transition(
            order_id=order_id,
            to_status=Status.EXPIRED,
            source=source,
            reason=EXPIRE_REASON,
            now=now,
            conditions={"expires_at__lte": now},
        ):
            return False
        order = Order.objects.get(pk=order_id)
        orders_release(orders=[release_row(order)], reason=f"order {order.number} expired")
        enqueue(order_notify_task, order_ids=[order_id], event="expired")
    return True


def order_expire_overdue(*, now: datetime | None = None, batch_size: int = EXPIRE_BATCH_SIZE) -> int:
    """Expire one bounded batch of overdue orders with set-based statements; returns how many.

    The rows are claimed with FOR UPDATE SKIP LOCKED among the statuses the transition table lets expire, so
    sweepers running side by side take disjoint batches, and a payment racing for one of them waits and then
    finds it expired. Then one UPDATE per source status (one: pending), the batch's events in one statement,
    and the batch's release (seats, coupons, one batched refund through the ledger).
    """
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        rows = list(
            Order.objects.select_for_update(skip_locked=True)
            .filter(status__in=sources_of(Status.EXPIRED), expires_at__lte=now)
            .order_by("expires_at", "id")
            .values("status", *RELEASE_FIELDS)[:batch_size]
        )
        if not rows:
            return 0
        moved = orders_transition_many(
            claimed={row["id"]: row["status"] for row in rows},
            to_status=Status.EXPIRED,
            source="orders.expire_overdue",
            reason=EXPIRE_REASON,
            now=now,
        )
        ids = sorted(order_id for moved_ids in moved.values() for order_id in moved_ids)
        won = set(ids)
        orders_release(orders=[row for row in rows if row["id"] in won], reason="order expired")
        enqueue(order_notify_task, order_ids=ids, event="expired")
    return len(ids)
