"""Capturing events: the outbox row (durable before the response leaves) and the wake-up of a worker.

The wake-up is best effort by design: a broker that is down or slow must cost a request nothing, never the
event. The row is already committed; the relay task on the beat schedule republishes what is left behind. It is
sent by a thread of its own in each process (`_Waker`): a commit only sets a flag, so a request never waits on
Redis or the broker.
"""

import datetime as dt
import logging
import os
import threading
import time
import uuid

import redis
from django.db import transaction
from django.utils import timezone

from backoffice.publishing import task_publish
from backoffice.redis_client import redis_client as shared_redis_client
from points.models import PendingEvent
from points.tasks import events_process_batch_task

logger = logging.getLogger(__name__)

KICK_KEY = "points:kick"  # set while a batch task is on its way; a worker deletes it before claiming rows
KICK_TTL_MS = 2000  # if that task is lost, the next capture after this publishes again
REDIS_TIMEOUT = 0.05  # seconds: a slow Redis costs a request at most this, then the breaker opens
BREAKER_SECONDS = 2.0  # after a failure, captures skip the broker this long (the relay catches up)
WAKE_IN_BACKGROUND = True  # tests that follow the publish step by step set this False (points/conftest)

_broker_down_until = 0.0


def redis_client() -> redis.Redis:
    """The shared Redis client with short timeouts, for the per-request calls of the points engine."""
    return shared_redis_client(timeout=REDIS_TIMEOUT)


def broker_available() -> bool:
    return time.monotonic() >= _broker_down_until


def broker_failed(exc: Exception | None = None) -> None:
    """Open the breaker; `exc` is logged unless the publish helper has logged the failure already."""
    global _broker_down_until
    _broker_down_until = time.monotonic() + BREAKER_SECONDS
    if exc is not None:
        logger.warning("points: broker unavailable (%s); captured events wait for the relay", exc)


def event_build(
    *,
    user_id: int,
    action_id: int,
    business_id: str = "",
    occurred_at=None,
    language: str = "",
    country: str = "",
    location: str = "",
    event_id: uuid.UUID | None = None,
) -> PendingEvent:
    """The outbox row for one completed action, not saved yet."""
    return PendingEvent(
        event_id=event_id or uuid.uuid4(),
        user_id=user_id,
        action_id=action_id,
        business_id=business_id[:100],
        occurred_at=occurred_at or timezone.now(),
        language=language[:16],
        country=country[:2],
        location=location[:200],
    )


def events_capture(*, events: list[PendingEvent]) -> list[PendingEvent]:
    """Write outbox rows and wake a worker once they are committed.

    Inside a caller's transaction (the capture middleware's, holding the business write) the rows join it with
    no savepoint: if the insert fails, the whole transaction rolls back. Outside one, a single row is one INSERT
    committed on its own (one round trip, the cheapest durable write there is); several are one statement.
    """
    if not events:
        return events
    if len(events) == 1:
        events[0].save(force_insert=True)
    else:
        PendingEvent.objects.bulk_create(events)
    transaction.on_commit(_wake)
    return events


def event_capture(**fields) -> PendingEvent:
    """Write the outbox row for one completed action (fields as event_build) and wake a worker after commit."""
    return events_capture(events=[event_build(**fields)])[0]


def events_kick() -> bool:
    """Publish one batch task unless one is already on its way; True when a task was published."""
    if not broker_available():
        return False
    try:
        if not redis_client().set(KICK_KEY, "1", nx=True, px=KICK_TTL_MS):
            return False  # a task is on its way and will claim this event too
    except Exception as exc:  # noqa: BLE001 - any broker failure: the row is safe, the relay publishes later
        broker_failed(exc)
        return False
    if not task_publish(events_process_batch_task, retry=False):
        broker_failed()
        return False
    return True


class _Waker:
    """Sends the wake-up (events_kick) from a daemon thread of this process; wake() only sets a flag.

    Wake-ups that arrive while one is being sent are folded into the next: one kick covers every row committed
    before the batch task claims rows. The thread is started on first use, and again in a forked child.
    """

    def __init__(self):
        self._due = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def wake(self) -> None:
        if self._pid != os.getpid() or self._thread is None or not self._thread.is_alive():
            self._start()
        self._due.set()

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
                return
            self._due = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(self._due,), name="points-waker", daemon=True)
            self._pid = os.getpid()
            self._thread.start()

    @staticmethod
    def _run(due: threading.Event) -> None:
        while True:
            due.wait()
            due.clear()
            try:
                events_kick()
            except Exception:  # noqa: BLE001 - the thread must outlive any failure; the relay catches up
                logger.exception("points: wake-up failed")


_waker = _Waker()


def _wake() -> None:
    if WAKE_IN_BACKGROUND:
        _waker.wake()
    else:
        events_kick()


def outbox_has_pending() -> bool:
    return PendingEvent.objects.exists()


def outbox_backlog(*, older_than_seconds: float = 0) -> int:
    """Captured events not applied yet, optionally only those older than some seconds."""
    pending = PendingEvent.objects.all()
    if older_than_seconds:
        pending = pending.filter(created_at__lte=timezone.now() - dt.timedelta(seconds=older_than_seconds))
    return pending.count()


def outbox_relay(*, older_than_seconds: float, max_tasks: int) -> int:
    """Publish batch tasks for events left behind (their own wake-up lost); returns the tasks published."""
    from points.processing import BATCH_SIZE

    backlog = outbox_backlog(older_than_seconds=older_than_seconds)
    tasks = min(max_tasks, -(-backlog // BATCH_SIZE))
    for published in range(tasks):
        if not task_publish(events_process_batch_task):
            return published  # the broker is down: the next relay run tries again
    return tasks
