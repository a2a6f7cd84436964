"""What staff may run: only tasks declared `staff_runnable`, only on queues a worker consumes (issue 12)."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from backoffice.console.models import TaskRun
from backoffice.console.services import task_run
from backoffice.task_registry import all_tasks, staff_tasks
from tests.schedules.helpers import interval

pytestmark = pytest.mark.django_db

INTERNAL = ["notify.email_send", "notify.sms_send", "exports.notify_ready", "exports.run", "orders.notify"]
SPOOF = {"to": "victim@example.com", "subject": "From the company", "body": "Click here"}


def queued(redis_client, queue="default") -> list[dict]:
    return [json.loads(raw) for raw in redis_client.lrange(queue, 0, -1)]


def test_internal_helpers_are_registered_but_not_offered_to_staff():
    assert set(INTERNAL) <= set(all_tasks())
    offered = staff_tasks()
    assert not set(INTERNAL) & set(offered)
    assert {"backoffice.ping", "orders.expire_overdue", "points.outbox_relay"} <= set(offered)


def test_the_console_index_lists_no_internal_task(client, operator):
    client.force_login(operator)

    response = client.get(reverse("console:index"))

    names = {task.name for task in response.context["tasks"]}
    assert "backoffice.ping" in names
    assert not set(INTERNAL) & names


@pytest.mark.parametrize("name", INTERNAL)
def test_an_operator_cannot_send_an_email_from_the_company_through_the_console(client, operator, redis_client, name):
    client.force_login(operator)

    response = client.post(
        reverse("console:task", kwargs={"name": name}), {"args": "[]", "kwargs": json.dumps(SPOOF), "when": "now"}
    )

    assert response.status_code == 404
    assert not TaskRun.objects.exists()
    assert queued(redis_client) == []


def test_the_service_refuses_an_internal_task_by_name(operator, redis_client):
    with pytest.raises(ValidationError) as refused:
        task_run(user=operator, task_name="notify.email_send", kwargs=SPOOF)

    assert refused.value.code == "internal"
    assert "internal task" in refused.value.messages[0]
    assert not TaskRun.objects.exists()
    assert queued(redis_client) == []


def test_a_queue_no_worker_consumes_is_a_form_error_in_the_console(client, operator, redis_client):
    client.force_login(operator)

    response = client.post(
        reverse("console:task", kwargs={"name": "backoffice.ping"}),
        {"args": "[]", "kwargs": "{}", "when": "now", "queue": "defualt"},
    )

    assert response.status_code == 200
    assert "defualt" in " ".join(response.context["form"].errors["queue"])
    assert not TaskRun.objects.exists()
    assert redis_client.llen("defualt") == 0


def test_a_queue_a_worker_consumes_is_where_the_console_sends_it(client, operator, redis_client, on_commit):
    client.force_login(operator)

    with on_commit(execute=True):  # the run is published once its record commits
        response = client.post(
            reverse("console:task", kwargs={"name": "backoffice.ping"}),
            {"args": "[]", "kwargs": "{}", "when": "now", "queue": "points"},
        )

    assert response.status_code == 302
    [message] = queued(redis_client, "points")
    assert message["headers"]["id"] == TaskRun.objects.get().task_id
    assert queued(redis_client) == []


def test_a_schedule_for_an_internal_task_is_refused_with_a_clear_error(client, operator):
    client.force_login(operator)
    data = {
        "name": "spam",
        "task": "notify.email_send",
        "interval": interval(60).pk,
        "args": "[]",
        "kwargs": json.dumps(SPOOF),
        "enabled": "on",
    }

    response = client.post(reverse("admin:django_celery_beat_periodictask_add"), data)

    assert response.status_code == 200
    errors = " ".join(response.context["adminform"].form.errors["task"])
    assert "notify.email_send is an internal task" in errors
    assert not PeriodicTask.objects.filter(name="spam").exists()


def test_a_schedule_on_a_queue_no_worker_consumes_is_refused(client, operator):
    client.force_login(operator)
    data = {
        "name": "typo",
        "task": "backoffice.ping",
        "interval": interval(60).pk,
        "args": "[]",
        "kwargs": "{}",
        "queue": "defualt",
        "enabled": "on",
    }

    response = client.post(reverse("admin:django_celery_beat_periodictask_add"), data)

    assert response.status_code == 200
    assert "No worker of this deployment consumes" in " ".join(response.context["adminform"].form.errors["queue"])
    assert not PeriodicTask.objects.filter(name="typo").exists()
