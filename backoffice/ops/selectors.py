"""Reads that feed the dashboard and the workers page. Each `panel_*` returns JSON-ready figures; they run in
the refresh task (never in a page request), so they may scan large tables.

Sources: django-celery-results' TaskResult (task history), the broker's queue lists, Celery's control API
(workers), beat's heartbeat in Redis and django-celery-beat's tables (schedules). The points and orders panels
are declared and computed by their own apps (points/dashboard.py, orders/dashboard.py).
"""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import redis
from celery import states
from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, DurationField, ExpressionWrapper, F
from django.db.models.functions import Coalesce, TruncHour
from django_celery_beat.models import PeriodicTask
from django_celery_results.models import TaskResult

from backoffice.celery import app as celery_app
from backoffice.redis_client import redis_client

SLOWEST_TASKS = 10  # rows in the "slowest tasks" table
NEXT_RUNS = 5  # upcoming beat runs shown
INSPECT_TIMEOUT_S = 1.0  # a worker that does not answer within this is shown as not answering
PING_TIMEOUT_S = 0.5
WORKERS_SEEN_KEY = "ops:workers-seen"  # how many workers answered last time: the next broadcast stops at that many
WORKERS_SEEN_SECONDS = 30  # after this a broadcast waits its whole timeout again, so a new worker is found
# kombu's Redis transport keeps one list per priority step; step 0 is the bare queue name.
# https://docs.celeryq.dev/projects/kombu/en/stable/reference/kombu.transport.redis.html
KOMBU_PRIORITY_SEPARATOR = "\x06\x16"
KOMBU_PRIORITY_STEPS = (0, 3, 6, 9)


def _hours(now: datetime, count: int) -> list[datetime]:
    last = now.replace(minute=0, second=0, microsecond=0)
    return [last - timedelta(hours=count - 1 - i) for i in range(count)]


def panel_tasks(*, now: datetime) -> dict:
    """Successes and failures per hour over 24 h (overall and by task name), and the slowest tasks."""
    hours = _hours(now, 24)
    since = hours[0]
    finished = TaskResult.objects.filter(date_done__gte=since, status__in=[states.SUCCESS, states.FAILURE])
    rows = (
        finished.annotate(hour=TruncHour("date_done"))
        .values("hour", "task_name", "status")
        .annotate(count=Count("id"))
        .order_by()
    )
    index = {hour: i for i, hour in enumerate(hours)}
    success = [0] * len(hours)
    failure = [0] * len(hours)
    by_name: dict[str, dict[str, int]] = {}
    for row in rows:
        slot = index.get(row["hour"].astimezone(hours[0].tzinfo)) if row["hour"] else None
        if slot is None:
            continue
        series = success if row["status"] == states.SUCCESS else failure
        series[slot] += row["count"]
        name = row["task_name"] or "?"
        totals = by_name.setdefault(name, {"success": 0, "failure": 0})
        totals["success" if row["status"] == states.SUCCESS else "failure"] += row["count"]
    duration = ExpressionWrapper(
        F("date_done") - Coalesce("date_started", "date_created"), output_field=DurationField()
    )
    slowest = (
        finished.filter(status=states.SUCCESS, date_done__isnull=False)
        .annotate(duration=duration)
        .order_by("-duration")
        .values("task_id", "task_name", "worker", "date_done", "duration")[:SLOWEST_TASKS]
    )
    return {
        "hours": [hour.isoformat() for hour in hours],
        "success": success,
        "failure": failure,
        "by_name": [
            {"task_name": name, **totals}
            for name, totals in sorted(by_name.items(), key=lambda item: -(item[1]["success"] + item[1]["failure"]))
        ],
        "slowest": [
            {
                "task_id": row["task_id"],
                "task_name": row["task_name"] or "?",
                "worker": row["worker"] or "",
                "date_done": row["date_done"].isoformat(),
                "seconds": round(row["duration"].total_seconds(), 3) if row["duration"] else 0.0,
            }
            for row in slowest
        ],
    }


def queue_lengths(client: redis.Redis | None = None) -> list[dict]:
    """Messages waiting in each configured queue (all priority lists summed)."""
    client = client or redis_client()
    names = [queue.name for queue in settings.CELERY_TASK_QUEUES]
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            for step in KOMBU_PRIORITY_STEPS:
                pipe.llen(name if step == 0 else f"{name}{KOMBU_PRIORITY_SEPARATOR}{step}")
        lengths = pipe.execute()
    per_queue = len(KOMBU_PRIORITY_STEPS)
    return [
        {"queue": name, "length": sum(lengths[i * per_queue : (i + 1) * per_queue])} for i, name in enumerate(names)
    ]


def panel_queues(*, now: datetime) -> dict:
    return {"queues": queue_lengths()}


def workers_inspect(*, timeout: float = INSPECT_TIMEOUT_S) -> list[dict]:
    """Every worker that answers, with its queues, pool, active and reserved tasks.

    One `stats` broadcast finds who is there and brings their pool figures. Without a limit a broadcast waits its
    whole timeout for unknown workers, so when the workers seen a moment ago (WORKERS_SEEN_KEY, kept
    WORKERS_SEEN_SECONDS) all answer it returns at once; a full wait runs again once that memory expires, so a
    worker that joined shows within WORKERS_SEEN_SECONDS. The three other inspect calls then address exactly
    those workers, at the same time, each on its own connection.
    """
    seen = cache.get(WORKERS_SEEN_KEY) or 0
    stats = celery_app.control.inspect(timeout=PING_TIMEOUT_S, limit=seen or None).stats() or {}
    names = sorted(stats)
    if not names:
        cache.delete(WORKERS_SEEN_KEY)
        return []
    if len(names) != seen:
        cache.set(WORKERS_SEEN_KEY, len(names), WORKERS_SEEN_SECONDS)
    with ThreadPoolExecutor(max_workers=3) as pool:
        calls = {
            method: pool.submit(_inspect_each, method, names, timeout)
            for method in ("active_queues", "active", "reserved")
        }
        active_queues, active, reserved = (calls[m].result() for m in ("active_queues", "active", "reserved"))
    workers = []
    for name in names:
        pool_stats = stats[name].get("pool") or {}
        pool_size = pool_stats.get("max-concurrency") or len(pool_stats.get("processes") or []) or 0
        running = active.get(name) or []
        workers.append(
            {
                "name": name,
                "answered": True,
                "pid": stats[name].get("pid"),
                "pool": pool_stats.get("implementation", "").rsplit(":", 1)[-1],
                "pool_size": pool_size,
                "load": round(len(running) / pool_size, 2) if pool_size else 0.0,
                "processed": sum((stats[name].get("total") or {}).values()),
                "queues": sorted(queue["name"] for queue in active_queues.get(name) or []),
                "active": [_task_brief(task) for task in running],
                "reserved": [_task_brief(task) for task in reserved.get(name) or []],
            }
        )
    return workers


def _inspect_each(method: str, names: list[str], timeout: float) -> dict:
    """One inspect call to exactly `names`, returning as soon as all of them answered (own connection: threads)."""
    with celery_app.connection_for_read() as connection:
        inspect = celery_app.control.inspect(
            destination=names, timeout=timeout, limit=len(names), connection=connection
        )
        return getattr(inspect, method)() or {}


def _task_brief(task: dict) -> dict:
    return {
        "id": task.get("id", ""),
        "name": task.get("name", ""),
        "args": str(task.get("args", ""))[:200],
        "time_start": task.get("time_start"),
    }


def panel_workers(*, now: datetime) -> dict:
    workers = workers_inspect()
    return {
        "workers": [
            {key: worker[key] for key in ("name", "pool", "pool_size", "load", "processed", "queues")}
            | {"active": len(worker["active"]), "reserved": len(worker["reserved"])}
            for worker in workers
        ]
    }


def panel_beat(*, now: datetime) -> dict:
    """Beat's last heartbeat and the next runs of the enabled schedules."""
    try:
        raw = redis_client().get(settings.BEAT_HEARTBEAT_KEY)
        last_tick = datetime.fromtimestamp(float(raw), tz=UTC).isoformat() if raw else None
    except redis.RedisError:
        last_tick = None
    upcoming = []
    enabled = PeriodicTask.objects.filter(enabled=True).select_related("interval", "crontab", "solar", "clocked")
    for task in enabled:
        due = _next_run(task, now)
        if due is not None:
            upcoming.append({"name": task.name, "task": task.task, "due": due.isoformat()})
    upcoming.sort(key=lambda item: item["due"])
    return {"last_tick": last_tick, "next_runs": upcoming[:NEXT_RUNS], "enabled": len(enabled)}


def _next_run(task: PeriodicTask, now: datetime) -> datetime | None:
    if task.one_off and task.total_run_count:
        return None
    if task.clocked_id:
        return task.clocked.clocked_time
    try:
        schedule = task.schedule
    except Exception:  # noqa: BLE001 - a broken schedule row must not hide the others
        return None
    last_run = task.last_run_at or task.start_time or task.date_changed or now
    remaining = schedule.remaining_estimate(last_run)  # measured from the schedule's own clock (now)
    due = now + remaining if remaining.total_seconds() > 0 else now  # overdue: beat sends it on its next tick
    if task.start_time and due < task.start_time:
        due = task.start_time
    return due
