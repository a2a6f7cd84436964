"""Points tasks: thin adapters over the services. Import direction: services may import this module at call
time to enqueue; each task imports its service inside the function body."""

from celery import shared_task

from backoffice.publishing import task_publish
from backoffice.retries import RETRY_DATABASE

RELAY_AGE_SECONDS = 2  # events younger than this are left to the task their capture published
RELAY_MAX_TASKS = 50  # one relay run publishes at most this many batch tasks; the next run does the rest


# One result per batch says nothing, so none is stored. A deadlock or a lost connection rolls the batch back
# whole; it is retried (and the relay would pick its events up anyway).
@shared_task(name="points.events_process_batch", ignore_result=True, **RETRY_DATABASE)
def events_process_batch_task(limit: int | None = None) -> int:
    """Apply one batch of captured events, and queue the next batch while a backlog remains."""
    from points.capture import KICK_KEY, broker_failed, outbox_has_pending, redis_client
    from points.processing import BATCH_SIZE, events_process_batch

    limit = max(1, min(int(limit or BATCH_SIZE), BATCH_SIZE))
    try:
        redis_client().delete(KICK_KEY)  # before claiming: a capture after this publishes a new task
    except Exception as exc:  # noqa: BLE001 - the TTL clears the key; the batch goes on
        broker_failed(exc)
    applied = events_process_batch(limit=limit)
    if applied and outbox_has_pending():  # more left (a full batch, or other user partitions): keep going
        task_publish(events_process_batch_task, kwargs={"limit": limit})  # if refused, the relay goes on
    return applied


# Every 5 s: a stored result per run would be ~17,000 rows a day saying "0". Beat records each run's time itself.
@shared_task(name="points.outbox_relay", ignore_result=True, staff_runnable=True)
def outbox_relay_task() -> int:
    """Publish batch tasks for captured events whose own task never came (broker down, worker killed)."""
    from points.capture import outbox_relay

    return outbox_relay(older_than_seconds=RELAY_AGE_SECONDS, max_tasks=RELAY_MAX_TASKS)


@shared_task(name="points.check_balances", staff_runnable=True)
def balances_check_task() -> int:
    """Nightly reconciliation: accounts whose balance differs from their ledger plus check-ins that have no
    points event (each logged)."""
    import logging

    from points.selectors import checkins_without_event
    from points.services import balances_check

    unrecorded = checkins_without_event()
    for checkin in unrecorded:
        logging.getLogger(__name__).error(
            "points: check-in %s of user %s on %s has no points event", checkin.pk, checkin.user_id, checkin.day
        )
    mismatches = balances_check()
    for m in mismatches:
        logging.getLogger(__name__).error(
            "points: account %s balance %s differs from its ledger %s (last after %s)",
            m.account_id,
            m.balance,
            m.ledger_sum,
            m.last_balance_after,
        )
    return len(mismatches) + len(unrecorded)
