"""Orders' Celery tasks: thin adapters that take ids, call one service and own only the retry policy.

Services import these tasks at the top; each task imports its service inside the function body (one import
direction at import time, as in every app). Names start with `orders.`, so they route to the orders queue.
"""

from celery import shared_task

from backoffice.retries import RETRY_DATABASE as DB_RETRY


@shared_task(name="orders.expire", **DB_RETRY)
def order_expire_task(*, order_id: int) -> bool:
    """The fast path at the order's deadline; the sweeper catches any this misses."""
    from orders.services import order_expire

    return order_expire(order_id=order_id)


@shared_task(name="orders.expire_overdue", bind=True, staff_runnable=True, **DB_RETRY)
def order_expire_overdue_task(self, *, batch_size: int | None = None) -> int:
    """The authoritative sweeper: one bounded batch, then itself again while a full batch came back."""
    from orders.services import EXPIRE_BATCH_SIZE, order_expire_overdue

    size = batch_size or EXPIRE_BATCH_SIZE
    expired = order_expire_overdue(batch_size=size)
    if expired == size:
        self.apply_async(kwargs={"batch_size": batch_size})
    return expired


@shared_task(name="orders.fulfil", **DB_RETRY)
def order_fulfil_task(*, order_id: int) -> bool:
    from orders.services import order_fulfil

    return order_fulfil(order_id=order_id)


@shared_task(name="orders.fulfil_overdue", staff_runnable=True, **DB_RETRY)
def order_fulfil_overdue_task() -> int:
    """The fulfilment sweeper: paid orders whose fulfil message was lost are fulfilled here."""
    from orders.services import order_fulfil_overdue

    return order_fulfil_overdue()


@shared_task(name="orders.notify", **DB_RETRY)
def order_notify_task(*, order_ids: list[int], event: str) -> int:
    """Queue the buyer notices for orders that were paid or expired; each notice retries on its own."""
    from orders.services import order_notify

    return order_notify(order_ids=order_ids, event=event)


@shared_task(name="orders.grab_decide", **DB_RETRY)
def grab_decide_task(*, request_id: int) -> str:
    from orders.services import grab_decide

    return grab_decide(request_id=request_id)
