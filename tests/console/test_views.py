import json
from datetime import timedelta

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.urls import reverse
from django.utils import timezone
from django_celery_results.models import TaskResult

from backoffice.auditing import audit_message
from backoffice.console.models import TaskRun

pytestmark = pytest.mark.django_db

INDEX = reverse("console:index")
PING = reverse("console:task", kwargs={"name": "backoffice.ping"})


def queued(redis_client) -> list[dict]:
    return [json.loads(raw) for raw in redis_client.lrange("default", 0, -1)]


def test_the_index_lists_every_registered_task_with_doc_signature_queue_and_counts(client, operator):
    TaskResult.objects.create(task_id="a", task_name="backoffice.ping", status="SUCCESS")
    TaskResult.objects.create(task_id="b", task_name="backoffice.ping", status="FAILURE")
    client.force_login(operator)

    response = client.get(INDEX)

    tasks = {task.name: task for task in response.context["tasks"]}
    ping = tasks["backoffice.ping"]
    assert (ping.signature, ping.queue, ping.succeeded, ping.failed) == (
        "(message: str = 'pong') -> str",
        "default",
        1,
        1,
    )
    assert ping.doc.startswith("Answer with the message")
    assert "results.cleanup" in tasks
    assert not [name for name in tasks if name.startswith("celery.")]


def test_an_operator_runs_a_task_now_and_it_is_recorded_and_logged(client, operator, redis_client, on_commit):
    client.force_login(operator)

    with on_commit(execute=True):
        response = client.post(PING, {"args": "[]", "kwargs": '{"message": "hello"}', "when": "now"})

    run = TaskRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("console:run", kwargs={"task_id": run.task_id})
    assert (run.task_name, run.kwargs, run.started_by, run.eta) == (
        "backoffice.ping",
        {"message": "hello"},
        operator,
        None,
    )
    entry = LogEntry.objects.get(object_id=str(run.pk))
    assert (entry.user, entry.action_flag, audit_message(entry)) == (operator, ADDITION, "Ran backoffice.ping")
    [message] = queued(redis_client)
    assert message["headers"]["id"] == run.task_id
    assert message["headers"]["eta"] is None


def test_a_countdown_becomes_an_eta(client, operator, redis_client, on_commit):
    client.force_login(operator)
    before = timezone.now()

    with on_commit(execute=True):
        client.post(PING, {"args": "[]", "kwargs": "{}", "when": "countdown", "countdown": "120"})

    run = TaskRun.objects.get()
    assert timedelta(seconds=119) < run.eta - before < timedelta(seconds=125)
    assert queued(redis_client)[0]["headers"]["eta"] == run.eta.isoformat()


@pytest.mark.parametrize(
    ("data", "field", "complaint"),
    [
        ({"kwargs": '{"nope": 1}'}, "kwargs", "got an unexpected keyword argument 'nope'"),
        ({"args": "[1, 2]"}, "args", "too many positional arguments"),
        ({"args": "{"}, "args", "not valid JSON"),
        ({"when": "countdown"}, "countdown", "Give the countdown"),
        ({"when": "countdown", "countdown": "-5"}, "countdown", "greater than or equal to 0"),
        ({"when": "eta"}, "eta", "Give the date and time"),
    ],
)
def test_bad_input_is_a_form_error_and_nothing_runs(client, operator, redis_client, data, field, complaint):
    client.force_login(operator)

    response = client.post(PING, {"args": "[]", "kwargs": "{}", "when": "now", **data})

    assert response.status_code == 200
    assert complaint in " ".join(response.context["form"].errors[field])
    assert not TaskRun.objects.exists()
    assert queued(redis_client) == []


def test_an_eta_beyond_the_visibility_timeout_is_refused(client, operator, redis_client, settings):
    settings.CELERY_VISIBILITY_TIMEOUT = 3600
    client.force_login(operator)
    later = timezone.localtime() + timedelta(hours=2)

    response = client.post(PING, {"args": "[]", "kwargs": "{}", "when": "eta", "eta": later.strftime("%Y-%m-%dT%H:%M")})

    assert "within 1 hours" in " ".join(response.context["form"].non_field_errors())
    assert not TaskRun.objects.exists()
    assert queued(redis_client) == []


def test_an_eta_in_the_past_is_refused(client, operator, redis_client):
    client.force_login(operator)
    earlier = timezone.localtime() - timedelta(hours=2)

    response = client.post(
        PING, {"args": "[]", "kwargs": "{}", "when": "eta", "eta": earlier.strftime("%Y-%m-%dT%H:%M")}
    )

    assert "in the past" in " ".join(response.context["form"].non_field_errors())
    assert queued(redis_client) == []


def test_an_unknown_task_is_404(client, operator):
    client.force_login(operator)

    assert client.get(reverse("console:task", kwargs={"name": "nope"})).status_code == 404


def test_analysts_do_not_see_the_console_and_cannot_run_or_revoke(client, analyst, redis_client):
    client.force_login(analyst)

    assert client.get(INDEX).status_code == 403  # the README's role table: the console is not theirs
    assert client.get(PING).status_code == 403
    assert client.post(PING, {"args": "[]", "kwargs": "{}", "when": "now"}).status_code == 403
    assert client.post(reverse("console:revoke", kwargs={"task_id": "x"})).status_code == 403
    assert not TaskRun.objects.exists()
    assert queued(redis_client) == []


def test_people_without_a_role_get_403_and_anonymous_the_login(client, django_user_model):
    nobody = django_user_model.objects.create_user(username="nobody", password="x", is_staff=True)
    assert client.get(INDEX).status_code == 302
    client.force_login(nobody)
    assert client.get(INDEX).status_code == 403
    assert client.get(reverse("console:run_status", kwargs={"task_id": "x"})).status_code == 403


def test_the_status_json_follows_the_stored_result(client, operator):
    client.force_login(operator)
    url = reverse("console:run_status", kwargs={"task_id": "t-1"})

    assert client.get(url).json() == {
        "task_id": "t-1",
        "state": "PENDING",
        "done": False,
        "result": None,
        "traceback": None,
    }
    TaskResult.objects.create(
        task_id="t-1",
        status="SUCCESS",
        result=json.dumps("pong"),
        content_type="application/json",
        content_encoding="utf-8",
    )
    assert client.get(url).json()["state"] == "SUCCESS"
    assert client.get(url).json()["result"] == "'pong'"


def test_ops_revoke_from_the_status_page_and_it_is_logged(client, ops, operator, monkeypatch, redis_client):
    from backoffice.celery import app
    from backoffice.console.services import task_run

    run = task_run(user=operator, task_name="backoffice.ping", countdown=600)
    revoked = []
    monkeypatch.setattr(app.control, "revoke", lambda task_id, **kw: revoked.append((task_id, kw["terminate"])))
    client.force_login(ops)

    response = client.post(reverse("console:revoke", kwargs={"task_id": run.task_id}), {"terminate": "0"})

    assert response.status_code == 302
    assert revoked == [(run.task_id, False)]
    [entry] = LogEntry.objects.filter(user=ops, object_id=str(run.pk))
    assert audit_message(entry) == f"Revoked task {run.task_id}"


def test_a_run_is_published_only_once_its_record_is_committed(operator, redis_client, on_commit):
    from backoffice.console.services import task_run

    with on_commit() as callbacks:
        run = task_run(user=operator, task_name="backoffice.ping", kwargs={"message": "hi"})
        assert queued(redis_client) == []  # still inside the transaction that writes the record

    assert len(callbacks) == 1
    callbacks[0]()
    [message] = queued(redis_client)
    assert message["headers"]["id"] == run.task_id


@pytest.mark.django_db(transaction=True)  # real commits: the publish runs when the service's transaction commits
def test_a_run_the_broker_refuses_is_a_form_error_and_leaves_no_record(client, operator, monkeypatch):
    from backoffice.celery import app

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(app.tasks["backoffice.ping"], "apply_async", broker_down)
    client.force_login(operator)

    response = client.post(PING, {"args": "[]", "kwargs": "{}", "when": "now"})

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == ["The broker did not accept the task; nothing was started."]
    assert not TaskRun.objects.exists()
    assert not LogEntry.objects.exists()


def test_revoking_a_task_id_the_portal_has_no_record_of_is_audited_too(client, ops, monkeypatch):
    from backoffice.celery import app

    monkeypatch.setattr(app.control, "revoke", lambda task_id, **kw: None)
    client.force_login(ops)

    client.post(reverse("console:revoke", kwargs={"task_id": "not-ours"}), {"terminate": "1"})

    [entry] = LogEntry.objects.all()
    assert (entry.user, entry.object_id, audit_message(entry)) == (ops, "not-ours", "Terminated task not-ours")


def test_a_countdown_typed_in_means_after_a_countdown_even_with_now_still_selected():
    from backoffice.console.forms import RunTaskForm

    form = RunTaskForm({"args": "[]", "kwargs": "{}", "when": "now", "countdown": "30"}, task_name="backoffice.ping")

    assert form.is_valid(), form.errors
    assert form.schedule()["countdown"] == 30


def test_an_eta_is_taken_and_shown_to_the_second():
    from backoffice.console.forms import RunTaskForm

    form = RunTaskForm(
        {"args": "[]", "kwargs": "{}", "when": "eta", "eta": "2030-01-02T03:04:05"}, task_name="backoffice.ping"
    )

    assert form.is_valid(), form.errors
    assert form.schedule()["eta"].second == 5
    assert 'step="1"' in str(form["eta"])


def test_a_task_that_ignores_its_result_shows_not_recorded_rather_than_a_false_zero():
    from backoffice.console.selectors import task_info
    from backoffice.tasks import ping_task
    from points.tasks import events_process_batch_task

    assert task_info("points.events_process_batch", events_process_batch_task, counts={}).records_results is False
    assert task_info("backoffice.ping", ping_task, counts={}).records_results is True
