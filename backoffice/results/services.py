"""State changes for stored task results (django-celery-results' TaskResult): retention."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_celery_results.models import TaskResult

CLEANUP_BATCH_SIZE = 5_000  # rows per DELETE: short locks, bounded WAL per statement
CLEANUP_MAX_BATCHES = 200  # one run deletes at most 1,000,000 rows; the next run continues


def _delete_in_batches(queryset, *, batches_left: int) -> tuple[int, int]:
    deleted = 0
    while batches_left > 0:
        ids = list(queryset.order_by("id").values_list("id", flat=True)[:CLEANUP_BATCH_SIZE])
        if not ids:
            break
        with transaction.atomic():
            deleted += TaskResult.objects.filter(id__in=ids).delete()[0]
        batches_left -= 1
    return deleted, batches_left


def results_cleanup(
    *,
    now: datetime | None = None,
    retention_days: int | None = None,
    retention_by_task: dict[str, int] | None = None,
    max_batches: int = CLEANUP_MAX_BATCHES,
) -> int:
    """Delete results finished before their retention window, batch by batch. Returns rows deleted.

    Each task name in `retention_by_task` (default: settings.RESULTS_RETENTION_BY_TASK) keeps its own
    number of days; every other task keeps `retention_days` (default: settings.RESULTS_RETENTION_DAYS).
    """
    now = now or timezone.now()
    default_days = settings.RESULTS_RETENTION_DAYS if retention_days is None else retention_days
    by_task = settings.RESULTS_RETENTION_BY_TASK if retention_by_task is None else retention_by_task
    deleted, batches_left = 0, max_batches
    for task_name, days in sorted(by_task.items()):
        stale = TaskResult.objects.filter(task_name=task_name, date_done__lt=now - timedelta(days=days))
        count, batches_left = _delete_in_batches(stale, batches_left=batches_left)
        deleted += count
    others = TaskResult.objects.filter(date_done__lt=now - timedelta(days=default_days)).exclude(
        task_name__in=list(by_task)
    )
    count, _left = _delete_in_batches(others, batches_left=batches_left)
    return deleted + count
