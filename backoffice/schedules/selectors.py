"""Reads behind the schedules admin: next runs, last result, counts, history and who changed what."""

from datetime import UTC, datetime, timedelta

from celery import schedules as celery_schedules
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, OuterRef, Subquery
from django_celery_beat.clockedschedule import clocked
from django_celery_beat.models import PeriodicTask
from django_celery_results.models import TaskResult

HISTORY_LENGTH = 20


def schedule_next_runs(*, periodic_task: PeriodicTask, now: datetime, count: int = 5) -> list[datetime]:
    """The next `count` run times (aware, UTC or the crontab's zone), as beat would compute them.

    Interval: an overdue schedule runs at once, then every period. Crontab: each next matching time,
    in the crontab's own time zone, so a 02:30 crontab in a DST zone follows its wall clock.
    """
    if not periodic_task.enabled or periodic_task.scheduler is None:
        return []
    schedule = periodic_task.schedule
    start = max(now, periodic_task.start_time) if periodic_task.start_time else now
    if isinstance(schedule, clocked):
        return [schedule.clocked_time] if periodic_task.total_run_count == 0 else []
    if isinstance(schedule, celery_schedules.crontab):
        runs = []
        last = start
        for _ in range(count):
            base, delta, _now = schedule.remaining_delta(last)
            last = (base + delta).astimezone(UTC)  # through UTC: a wall time skipped by DST comes out real
            runs.append(last)
        return runs
    if isinstance(schedule, celery_schedules.schedule):
        every = schedule.run_every
        last = periodic_task.last_run_at or periodic_task.date_changed or now
        first = max(last + every, start)
        return [first + every * n for n in range(count)]
    return [now + schedule.remaining_estimate(periodic_task.last_run_at or now)]  # solar: the next one


def schedule_last_result(*, name: str) -> TaskResult | None:
    return TaskResult.objects.filter(periodic_task_name=name).order_by("-date_done", "-id").first()


def schedule_result_counts(*, name: str, since: datetime) -> dict[str, int]:
    rows = (
        TaskResult.objects.filter(periodic_task_name=name, date_done__gte=since)
        .values("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["status"]: row["n"] for row in rows}


def schedule_history(*, name: str, limit: int = HISTORY_LENGTH) -> list[TaskResult]:
    return list(
        TaskResult.objects.filter(periodic_task_name=name)
        .order_by("-date_done", "-id")
        .only("id", "task_id", "status", "date_done", "worker")[:limit]
    )


def schedule_changes(*, periodic_task: PeriodicTask, limit: int = HISTORY_LENGTH) -> list[LogEntry]:
    """Who changed this schedule, when and what, from the admin log (bulk actions log there too)."""
    return list(
        LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(PeriodicTask), object_id=str(periodic_task.pk)
        )
        .select_related("user")
        .order_by("-action_time")[:limit]
    )


def with_last_result(queryset):
    """Annotate each schedule with its latest result's id and status (one indexed lookup per row)."""
    latest = TaskResult.objects.filter(periodic_task_name=OuterRef("name")).order_by("-date_done", "-id")
    return queryset.annotate(
        last_result_id=Subquery(latest.values("id")[:1]),
        last_result_status=Subquery(latest.values("status")[:1]),
    )


def day_ago(now: datetime) -> datetime:
    return now - timedelta(days=1)
