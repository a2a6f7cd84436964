"""Reads behind the task console: the registered tasks with their details, and one task's live state."""

from dataclasses import dataclass
from datetime import timedelta

from celery import states
from celery.result import AsyncResult
from django.core.cache import cache
from django.db.models import Count
from django.utils import timezone
from django_celery_results.models import TaskResult

from backoffice.celery import app as celery_app
from backoffice.console.models import TaskRun
from backoffice.task_registry import staff_tasks, task_queue, task_signature

COUNTS_CACHE_KEY = "console:task-counts"
COUNTS_CACHE_SECONDS = 30  # the index page stays cheap however many results were stored in the last day


@dataclass
class TaskInfo:
    name: str
    doc: str
    signature: str
    queue: str
    succeeded: int
    failed: int
    records_results: bool  # False: the task ignores its result, so no count here can be trusted (not a 0)


def recent_counts() -> dict[str, dict[str, int]]:
    """Per task name, results by status over the last day (cached briefly)."""
    counts = cache.get(COUNTS_CACHE_KEY)
    if counts is None:
        counts = {}
        rows = (
            TaskResult.objects.filter(date_done__gte=timezone.now() - timedelta(days=1))
            .values("task_name", "status")
            .annotate(n=Count("id"))
            .order_by()
        )
        for row in rows:
            counts.setdefault(row["task_name"], {})[row["status"]] = row["n"]
        cache.set(COUNTS_CACHE_KEY, counts, COUNTS_CACHE_SECONDS)
    return counts


def task_infos() -> list[TaskInfo]:
    counts = recent_counts()
    return [task_info(name, task, counts) for name, task in staff_tasks().items()]


def task_info(name: str, task, counts: dict | None = None) -> TaskInfo:
    by_status = (counts if counts is not None else recent_counts()).get(name, {})
    return TaskInfo(
        name=name,
        doc=(task.__doc__ or "").strip(),
        signature=str(task_signature(task)),
        queue=task_queue(name),
        succeeded=by_status.get(states.SUCCESS, 0),
        failed=by_status.get(states.FAILURE, 0),
        records_results=not _ignores_result(task),
    )


def _ignores_result(task) -> bool:
    ignored = getattr(task, "ignore_result", None)
    return bool(celery_app.conf.task_ignore_result if ignored is None else ignored)


def task_state(task_id: str) -> dict:
    """The task's state as AsyncResult reports it (PENDING until a worker stores something)."""
    result = AsyncResult(task_id, app=celery_app)
    state = result.state
    body = {"task_id": task_id, "state": state, "done": state in states.READY_STATES, "result": None, "traceback": None}
    if state == states.SUCCESS:
        body["result"] = repr(result.result)
    elif state in (states.FAILURE, states.RETRY):
        body["result"] = repr(result.result)
        body["traceback"] = result.traceback
    return body


RECENT_RUNS = 10  # what the console's index lists


def runs_recent() -> list[TaskRun]:
    return list(TaskRun.objects.select_related("started_by")[:RECENT_RUNS])


def run_of(task_id: str) -> TaskRun | None:
    return TaskRun.objects.select_related("started_by").filter(task_id=task_id).first()
