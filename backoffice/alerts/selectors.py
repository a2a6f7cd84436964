"""The figures alert rules measure. Each reads an index, a capped count, Redis or a worker ping: none scans a
big table, so one evaluation of every rule stays cheap however large the task results and the ledger grow
(`make bench ONLY=alerts`).

Every measure returns a number where larger is worse; a rule fires while its measure is at least its threshold.
Measures shared by several rules (the queue lengths, the worker ping) are read once per evaluation.
"""

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import redis
from celery import states
from django.conf import settings
from django.db.models import Count, Q
from django_celery_results.models import TaskResult

from backoffice.alerts.models import AlertRule
from backoffice.celery import app as celery_app
from backoffice.exports.models import ExportJob
from backoffice.ops.selectors import queue_lengths
from orders.models import Order
from points.models import PendingEvent

COUNT_CAP = 100_000  # counts stop here: an alert needs "too many", not the exact figure of a runaway backlog
WORKER_PING_TIMEOUT_S = 1.0  # paid in full only when no worker answers, i.e. while "no worker" fires
REDIS_TIMEOUT_S = 0.5

Kind = AlertRule.Kind


class Figures:
    """Measures for one evaluation, with the shared ones memoised."""

    def __init__(self, *, now: datetime):
        self.now = now
        self._memo: dict[str, object] = {}

    @property
    def redis(self) -> redis.Redis:
        """One client for the evaluation's Redis reads (queue lengths, beat's heartbeat)."""
        return self._once(
            "redis",
            lambda: redis.Redis.from_url(
                settings.REDIS_URL, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
            ),
        )

    def start_worker_ping(self) -> None:
        """Send the worker ping now and read its answer when a rule needs it: it waits on the broker while the
        other rules query the database (it touches no database connection)."""
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alerts-ping")
        self._memo["workers_future"] = self._pool.submit(_ping)

    def close(self) -> None:
        if "redis" in self._memo:
            self._memo.pop("redis").close()
        if pool := getattr(self, "_pool", None):
            pool.shutdown(wait=True)

    def _once(self, key: str, compute: Callable):
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def measure(self, rule: AlertRule) -> float:
        return float(MEASURES[rule.kind](self, rule))


def _since(figures: Figures, rule: AlertRule) -> datetime:
    return figures.now - timedelta(seconds=rule.window_seconds)


def _finished(figures: Figures, rule: AlertRule):
    """Results finished in the rule's window: a range on the date_done index (a few minutes of results)."""
    finished = TaskResult.objects.filter(date_done__gte=_since(figures, rule))
    return finished.filter(task_name=rule.task_name) if rule.task_name else finished


def task_failures(figures: Figures, rule: AlertRule) -> int:
    return _finished(figures, rule).filter(status=states.FAILURE).count()


def task_failure_rate(figures: Figures, rule: AlertRule) -> float:
    counts = _finished(figures, rule).aggregate(
        failed=Count("id", filter=Q(status=states.FAILURE)),
        finished=Count("id", filter=Q(status__in=states.READY_STATES)),
    )
    if counts["finished"] < max(rule.min_finished, 1):
        return 0.0
    return round(counts["failed"] / counts["finished"], 4)


def _queue_lengths(figures: Figures) -> dict[str, int]:
    try:
        return figures._once("queues", lambda: {row["queue"]: row["length"] for row in queue_lengths(figures.redis)})
    except redis.RedisError:
        return {}


def queue_length(figures: Figures, rule: AlertRule) -> int:
    lengths = _queue_lengths(figures)
    return lengths.get(rule.queue, 0) if rule.queue else sum(lengths.values())


def outbox_backlog(figures: Figures, rule: AlertRule) -> int:
    return PendingEvent.objects.order_by()[:COUNT_CAP].count()


def outbox_oldest_age(figures: Figures, rule: AlertRule) -> float:
    oldest = PendingEvent.objects.order_by("created_at").values_list("created_at", flat=True).first()
    return round((figures.now - oldest).total_seconds(), 1) if oldest else 0.0


def beat_heartbeat_age(figures: Figures, rule: AlertRule) -> float:
    """Seconds since beat's last tick; never ticked (or Redis unreachable) reads as a day."""
    try:
        raw = figures.redis.get(settings.BEAT_HEARTBEAT_KEY)
    except redis.RedisError:
        raw = None
    return round(max(time.time() - float(raw), 0.0), 1) if raw else 86400.0


def _ping() -> int:
    try:
        return len(celery_app.control.ping(timeout=WORKER_PING_TIMEOUT_S, limit=1) or [])
    except Exception:  # noqa: BLE001 - a broker that cannot be reached means no worker can be reached either
        return 0


def workers_online(figures: Figures) -> int:
    """Workers answering a ping; it returns at the first answer, so a live cluster costs milliseconds."""
    pending = figures._memo.get("workers_future")
    return figures._once("workers", pending.result if pending else _ping)


def no_worker(figures: Figures, rule: AlertRule) -> int:
    return 0 if workers_online(figures) else 1


def overdue_orders(figures: Figures, rule: AlertRule) -> int:
    """Pending orders whose deadline passed more than the window ago: the expiry sweeper is behind."""
    late = figures.now - timedelta(seconds=rule.window_seconds)
    return Order.objects.filter(status=Order.Status.PENDING, expires_at__lt=late).order_by()[:COUNT_CAP].count()


def refund_flagged(figures: Figures, rule: AlertRule) -> int:
    return Order.objects.filter(needs_refund=True).order_by()[:COUNT_CAP].count()  # cleared when refunded


def failed_exports(figures: Figures, rule: AlertRule) -> int:
    return (
        ExportJob.objects.filter(status=ExportJob.Status.FAILED, created_at__gte=_since(figures, rule))
        .order_by()[:COUNT_CAP]
        .count()
    )


MEASURES: dict[str, Callable[[Figures, AlertRule], float]] = {
    Kind.TASK_FAILURES: task_failures,
    Kind.TASK_FAILURE_RATE: task_failure_rate,
    Kind.QUEUE_LENGTH: queue_length,
    Kind.OUTBOX_BACKLOG: outbox_backlog,
    Kind.OUTBOX_OLDEST_AGE: outbox_oldest_age,
    Kind.BEAT_HEARTBEAT_AGE: beat_heartbeat_age,
    Kind.NO_WORKER: no_worker,
    Kind.OVERDUE_ORDERS: overdue_orders,
    Kind.REFUND_FLAGGED: refund_flagged,
    Kind.FAILED_EXPORTS: failed_exports,
}


def firing_panel(*, now: datetime) -> dict:
    """The dashboard panel: the rules firing now (computed by the dashboard refresh)."""
    firing = AlertRule.objects.filter(firing_since__isnull=False, is_enabled=True).order_by("firing_since")
    return {
        "firing": [
            {
                "name": rule.name,
                "kind": rule.get_kind_display(),
                "value": rule.last_value,
                "threshold": rule.threshold,
                "since": rule.firing_since.isoformat(),
                "silenced": rule.is_silenced(now),
            }
            for rule in firing
        ]
    }
