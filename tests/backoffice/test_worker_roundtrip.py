import pytest
from django_celery_results.models import TaskResult

from backoffice.tasks import ping_task
from tests.processes import wait_for

pytestmark = pytest.mark.slow


def test_task_runs_on_real_worker_and_result_is_stored(live_worker):
    result = ping_task.delay("hello")

    assert result.get(timeout=20) == "hello"
    stored = wait_for(
        lambda: TaskResult.objects.filter(task_id=result.id, status="SUCCESS").first(),
        timeout=10,
        message="the stored TaskResult",
    )
    assert stored.task_name == "backoffice.ping"
    assert stored.task_args == "\"('hello',)\""
    assert stored.worker == live_worker.hostname
