"""State changes for stored task results (django-celery-results' TaskResult)."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django_celery_results.models import TaskResult

CLEANUP_BATCH_SIZE = 5_000  # rows per DELETE: short locks, bounded WAL per statement


def results_cleanup(*, now=None, retention_days: int | None = None, max_batches: int = 200) -> int:
    """Delete results finished before the retention window, batch by batch. Returns rows deleted."""
    now = now or timezone.now()
    days = settings.RESULTS_RETENTION_DAYS if retention_days is None else retention_days
    cutoff = now - timedelta(days=days)
    deleted = 0
    for _ in range(max_batches):
        ids = list(
            TaskResult.objects.filter(date_done__lt=cutoff).order_by("id").values_list("id", flat=True)[
                :CLEANUP_BATCH_SIZE
            ]
        )
        if not ids:
            break
        deleted += TaskResult.objects.filter(id__in=ids).delete()[0]
    return deleted
