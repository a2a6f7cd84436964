"""Status moves, only along orders.models.TRANSITIONS, each a conditional UPDATE that names its source status.

Of two racing transitions of one order (a payment and an expiry) exactly one updates the row; only the winner
does the follow-up work (giving back seats, coupon and points), so that work happens exactly once. Every move
writes its event through orders.services.events, one order at a time or a batch's at once.
"""

from datetime import datetime

from django.utils import timezone

from orders.models import TRANSITION_TIMESTAMPS, TRANSITIONS, Order
from orders.services.events import event_record, events_record_many
from points.bulk import any_of


def sources_of(to_status: str) -> list[str]:
    """The statuses TRANSITIONS allows to move to `to_status`, in a fixed order."""
    sources = sorted(src for src, dst in TRANSITIONS if dst == to_status)
    if not sources:
        raise ValueError(f"no transition leads to {to_status!r}")
    return sources


def order_transition(
    *,
    order_id: int,
    to_status: str,
    source: str,
    actor=None,
    reason: str = "",
    now: datetime | None = None,
    conditions: dict | None = None,
    extra: dict | None = None,
) -> str | None:
    """Move one order to `to_status` from whichever status TRANSITIONS allows, by conditional UPDATE.

    Returns the status it moved from, or None when the order was not in an allowed status (another
    transition won). `conditions` narrow the UPDATE further (e.g. the deadline has passed). Call inside a
    transaction: the caller's follow-up work must commit or roll back with the status change.
    """
    sources = sources_of(to_status)
    now = now or timezone.now()
    fields = {"status": to_status, TRANSITION_TIMESTAMPS[to_status]: now, **(extra or {})}
    for from_status in sources:
        if Order.objects.filter(pk=order_id, status=from_status, **(conditions or {})).update(**fields):
            event_record(
                order_id=order_id, from_status=from_status, to_status=to_status, actor=actor, source=source,
                reason=reason,
            )  # fmt: skip
            return from_status
    return None


def orders_transition_many(
    *, claimed: dict[int, str], to_status: str, source: str, reason: str, now: datetime | None = None
) -> dict[str, list[int]]:
    """Move a batch of orders to `to_status`: one conditional UPDATE per source status TRANSITIONS allows.

    `claimed` maps each order id to the status the caller read while locking the row (SELECT ... FOR UPDATE):
    with the rows locked nothing else can move them, so every UPDATE must match every row it names, and a
    mismatch raises rather than let the caller give anything back twice. Orders whose status allows no move
    to `to_status` are left alone. Returns the ids moved, by the status they left (events written).
    """
    sources = sources_of(to_status)
    now = now or timezone.now()
    moved: dict[str, list[int]] = {}
    for from_status in sources:
        ids = sorted(order_id for order_id, status in claimed.items() if status == from_status)
        if not ids:
            continue
        updated = Order.objects.filter(any_of(Order, "id", ids), status=from_status).update(
            status=to_status, **{TRANSITION_TIMESTAMPS[to_status]: now}
        )
        if updated != len(ids):  # impossible while the rows are locked; refuse to restore twice if it happens
            raise RuntimeError(f"moved {updated} of {len(ids)} locked orders from {from_status} to {to_status}")
        events_record_many(
            order_ids=ids, from_status=from_status, to_status=to_status, source=source, reason=reason, now=now
        )
        moved[from_status] = ids
    return moved
