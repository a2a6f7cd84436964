"""The console against a real worker: a countdown task goes PENDING -> SUCCESS on the status page."""

import pytest
from django.urls import reverse

from backoffice.console.models import TaskRun
from tests.processes import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_task_run_with_a_countdown_goes_from_pending_to_success(live_worker, client, operator):
    client.force_login(operator)
    response = client.post(
        reverse("console:task", kwargs={"name": "backoffice.ping"}),
        {"args": '["from the console"]', "kwargs": "{}", "when": "countdown", "countdown": "3"},
    )
    run = TaskRun.objects.get()
    status_url = reverse("console:run_status", kwargs={"task_id": run.task_id})
    assert response["Location"] == reverse("console:run", kwargs={"task_id": run.task_id})

    seen = [client.get(status_url).json()["state"]]
    assert seen == ["PENDING"]  # the countdown has not run out: the worker holds it unstarted

    def finished():
        body = client.get(status_url).json()
        if seen[-1] != body["state"]:
            seen.append(body["state"])
        return body if body["done"] else None

    body = wait_for(finished, timeout=20, interval=0.2, message="the task to finish")
    assert body == {
        "task_id": run.task_id,
        "state": "SUCCESS",
        "done": True,
        "result": "'from the console'",
        "traceback": None,
    }
    assert seen[0] == "PENDING" and seen[-1] == "SUCCESS"
    assert set(seen) <= {"PENDING", "STARTED", "SUCCESS"}
    page = client.get(reverse("console:run", kwargs={"task_id": run.task_id})).content.decode()
    assert "started by operator" in page
