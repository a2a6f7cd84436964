import json

import pytest
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from tests.schedules.helpers import form_data, make_schedule

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:django_celery_beat_periodictask_add")


def test_operator_adds_a_schedule_for_a_registered_task_with_binding_kwargs(client, operator):
    client.force_login(operator)
    data = {
        "name": "say hi",
        "task": "backoffice.ping",
        "every": 60,
        "period": "seconds",
        "args": "[]",
        "kwargs": '{"message": "hi"}',
        "enabled": "on",
    }

    response = client.post(ADD_URL, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    task = PeriodicTask.objects.get(name="say hi")
    assert (task.task, json.loads(task.kwargs), task.interval.every) == ("backoffice.ping", {"message": "hi"}, 60)


def test_kwargs_that_do_not_bind_are_refused_naming_the_argument(client, operator):
    client.force_login(operator)
    data = {
        "name": "bad",
        "task": "backoffice.ping",
        "every": 60,
        "period": "seconds",
        "args": "[]",
        "kwargs": '{"mesage": "typo"}',
        "enabled": "on",
    }

    response = client.post(ADD_URL, data)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "got an unexpected keyword argument 'mesage'" in " ".join(errors["kwargs"])
    assert not PeriodicTask.objects.filter(name="bad").exists()


def test_too_many_positional_arguments_are_refused(client, operator):
    client.force_login(operator)
    data = {
        "name": "bad",
        "task": "backoffice.ping",
        "every": 60,
        "period": "seconds",
        "args": '["a", "b"]',
        "kwargs": "{}",
        "enabled": "on",
    }

    response = client.post(ADD_URL, data)

    assert "too many positional arguments" in " ".join(response.context["adminform"].form.errors["args"])
    assert not PeriodicTask.objects.filter(name="bad").exists()


def test_an_unknown_task_name_is_a_form_error(client, operator):
    client.force_login(operator)
    data = {"name": "ghost", "task": "nope.not_a_task", "every": 60, "period": "seconds", "args": "[]", "kwargs": "{}"}

    response = client.post(ADD_URL, data)

    assert response.context["adminform"].form.errors["task"] == ["nope.not_a_task is not a registered task."]
    assert not PeriodicTask.objects.filter(name="ghost").exists()


@pytest.mark.parametrize(
    ("field", "value", "complaint"),
    [
        ("args", '{"a": 1}', "must be a JSON list"),
        ("kwargs", "[1]", "must be a JSON object"),
        ("kwargs", "{nope", "not valid JSON"),
    ],
)
def test_arguments_must_be_a_json_list_and_object(client, operator, field, value, complaint):
    client.force_login(operator)
    data = {"name": "bad", "task": "backoffice.ping", "every": 60, "period": "seconds", "args": "[]", "kwargs": "{}"}
    data[field] = value

    response = client.post(ADD_URL, data)

    assert complaint in " ".join(response.context["adminform"].form.errors[field])
    assert not PeriodicTask.objects.filter(name="bad").exists()


def test_the_task_field_offers_registered_tasks_only(client, operator):
    client.force_login(operator)

    response = client.get(ADD_URL)

    choices = [value for value, _label in response.context["adminform"].form.fields["task"].choices]
    assert "backoffice.ping" in choices
    assert "results.cleanup" in choices
    assert not [name for name in choices if name.startswith("celery.")]


def test_an_invalid_crontab_is_refused_on_save(client, operator):
    client.force_login(operator)
    url = reverse("admin:django_celery_beat_crontabschedule_add")

    response = client.post(
        url,
        {"minute": "61", "hour": "*", "day_of_month": "*", "month_of_year": "*", "day_of_week": "*", "timezone": "UTC"},
    )

    assert response.status_code == 200
    assert "minute" in response.context["adminform"].form.errors
    assert not CrontabSchedule.objects.filter(minute="61").exists()


def test_editing_an_existing_schedule_keeps_validation(client, operator):
    task = make_schedule()
    client.force_login(operator)
    url = reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])

    response = client.post(url, form_data(task, kwargs='{"message": "x", "extra": 1}'))

    assert "unexpected keyword argument 'extra'" in " ".join(response.context["adminform"].form.errors["kwargs"])
    task.refresh_from_db()
    assert task.kwargs == "{}"


def test_a_route_to_a_queue_no_worker_consumes_fails_the_system_check(settings):
    from backoffice.schedules.checks import worker_queues_check

    settings.CELERY_TASK_ROUTES = {**settings.CELERY_TASK_ROUTES, "exports.*": {"queue": "nowhere"}}

    [error] = worker_queues_check(None)

    assert error.id == "schedules.E001"
    assert "'nowhere'" in error.msg


def test_every_default_schedule_runs_a_task_staff_may_run():
    from backoffice.schedules.defaults import DEFAULT_SCHEDULES
    from backoffice.task_registry import staff_tasks

    assert [default.task for default in DEFAULT_SCHEDULES if default.task not in staff_tasks()] == []
