from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_results.models import TaskResult

from backoffice.results import services
from backoffice.results.services import results_cleanup

pytestmark = pytest.mark.django_db


def stored(task_id: str, task_name: str | None, age_days: float) -> None:
    TaskResult.objects.create(task_id=task_id, task_name=task_name, status="SUCCESS")
    TaskResult.objects.filter(task_id=task_id).update(date_done=timezone.now() - timedelta(days=age_days))


def remaining() -> list[str]:
    return sorted(TaskResult.objects.values_list("task_id", flat=True))


def test_each_task_name_keeps_its_own_retention_and_others_the_default():
    stored("ping-2d", "backoffice.ping", 2)
    stored("ping-half", "backoffice.ping", 0.5)
    stored("relay-5d", "points.relay", 5)
    stored("relay-9d", "points.relay", 9)
    stored("other-20d", "orders.sweep", 20)
    stored("other-40d", "orders.sweep", 40)
    stored("nameless-40d", None, 40)

    deleted = results_cleanup(retention_days=30, retention_by_task={"backoffice.ping": 1, "points.relay": 7})

    assert deleted == 4
    assert remaining() == ["other-20d", "ping-half", "relay-5d"]


def test_per_task_retention_comes_from_settings(settings):
    settings.RESULTS_RETENTION_DAYS = 30
    settings.RESULTS_RETENTION_BY_TASK = {"backoffice.ping": 1}
    stored("ping-2d", "backoffice.ping", 2)
    stored("other-2d", "orders.sweep", 2)

    assert results_cleanup() == 1
    assert remaining() == ["other-2d"]


def test_a_task_with_longer_retention_is_not_deleted_by_the_default():
    stored("audit-60d", "orders.audit", 60)
    stored("other-60d", "orders.sweep", 60)

    results_cleanup(retention_days=30, retention_by_task={"orders.audit": 90})

    assert remaining() == ["audit-60d"]


def test_cleanup_deletes_in_batches_and_stops_at_the_batch_limit(monkeypatch):
    monkeypatch.setattr(services, "CLEANUP_BATCH_SIZE", 2)
    for number in range(5):
        stored(f"old-{number}", "orders.sweep", 40)

    assert results_cleanup(retention_days=30, retention_by_task={}, max_batches=2) == 4
    assert remaining() == ["old-4"]
    assert results_cleanup(retention_days=30, retention_by_task={}, max_batches=2) == 1
    assert remaining() == []


def test_the_task_calls_the_service(settings):
    from backoffice.results.tasks import results_cleanup_task

    settings.RESULTS_RETENTION_DAYS = 30
    stored("other-40d", "orders.sweep", 40)

    assert results_cleanup_task() == 1
