import json

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_celery_results.models import TaskResult

from backoffice.auditing import audit_message
from backoffice.console.models import TaskRun
from tests.schedules.helpers import make_schedule

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:django_celery_results_taskresult_changelist")


def failed_ping(task_id="failed-1", **fields):
    return TaskResult.objects.create(
        task_id=task_id,
        task_name="backoffice.ping",
        status="FAILURE",
        task_args=json.dumps("('again',)"),
        task_kwargs=json.dumps("{}"),
        **fields,
    )


def test_the_changelist_never_counts_the_whole_table(client, analyst):
    for number in range(3):
        TaskResult.objects.create(task_id=f"t{number}", task_name="backoffice.ping", status="SUCCESS")
    client.force_login(analyst)

    with CaptureQueriesContext(connection) as queries:
        response = client.get(CHANGELIST)

    assert response.status_code == 200
    assert response.context["cl"].result_count == 3
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT" in sql.upper() or "reltuples" in sql for sql in counts), counts
    assert not [q["sql"] for q in queries if "DISTINCT" in q["sql"].upper()]


def test_filters_search_and_date_hierarchy(client, analyst):
    make_schedule("p")
    TaskResult.objects.create(task_id="a", task_name="backoffice.ping", status="SUCCESS", periodic_task_name="p")
    TaskResult.objects.create(task_id="b", task_name="results.cleanup", status="FAILURE")
    client.force_login(analyst)

    def shown(**params):
        return sorted(r.task_id for r in client.get(CHANGELIST, params).context["cl"].result_list)

    assert shown(status="FAILURE") == ["b"]
    assert shown(task_name="backoffice.ping") == ["a"]
    assert shown(periodic_task_name="p") == ["a"]
    assert shown(q="b") == ["b"]
    assert shown(q="results.cleanup") == ["b"]
    page = client.get(CHANGELIST).content.decode()
    assert "date_done__" in page  # the hierarchy offers drill-down links


def test_ops_retry_a_failed_task_with_the_same_arguments(client, ops, redis_client, on_commit):
    original = failed_ping()
    client.force_login(ops)

    with on_commit(execute=True):
        response = client.post(CHANGELIST, {"action": "retry_selected", "_selected_action": [original.pk]})

    assert response.status_code == 302
    run = TaskRun.objects.get()
    assert (run.task_name, run.args, run.kwargs, run.retry_of, run.started_by) == (
        "backoffice.ping",
        ["again"],
        {},
        "failed-1",
        ops,
    )
    message = json.loads(redis_client.lindex("default", 0))
    assert message["headers"]["id"] == run.task_id
    assert LogEntry.objects.filter(user=ops, object_id=str(run.pk)).exists()


def test_a_successful_task_is_not_retried(client, ops, redis_client):
    done = TaskResult.objects.create(task_id="ok", task_name="backoffice.ping", status="SUCCESS")
    client.force_login(ops)

    client.post(CHANGELIST, {"action": "retry_selected", "_selected_action": [done.pk]})

    assert not TaskRun.objects.exists()
    assert redis_client.llen("default") == 0


def test_operators_and_analysts_cannot_retry_or_revoke(client, operator, analyst, redis_client):
    original = failed_ping()
    running = TaskResult.objects.create(task_id="running", task_name="backoffice.ping", status="STARTED")
    for user in (operator, analyst):
        client.force_login(user)
        assert client.get(CHANGELIST).context["action_form"] is None  # no action is offered at all
        client.post(CHANGELIST, {"action": "retry_selected", "_selected_action": [original.pk]})
        client.post(CHANGELIST, {"action": "terminate_selected", "_selected_action": [running.pk]})
    assert not TaskRun.objects.exists()
    assert not LogEntry.objects.exists()


def test_ops_revoke_a_running_task_and_it_is_logged(client, ops, monkeypatch):
    from backoffice.celery import app

    revoked = []
    monkeypatch.setattr(app.control, "revoke", lambda task_id, **kw: revoked.append((task_id, kw["terminate"])))
    running = TaskResult.objects.create(task_id="running", task_name="backoffice.ping", status="STARTED")
    finished = TaskResult.objects.create(task_id="finished", task_name="backoffice.ping", status="SUCCESS")
    client.force_login(ops)

    client.post(CHANGELIST, {"action": "terminate_selected", "_selected_action": [running.pk, finished.pk]})

    assert revoked == [("running", True)]
    assert audit_message(LogEntry.objects.get(user=ops)) == "Terminated task running"


def test_results_are_read_only_for_everyone(client, operator):
    result = failed_ping()
    client.force_login(operator)

    url = reverse("admin:django_celery_results_taskresult_change", args=[result.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert client.post(url, {"status": "SUCCESS"}).status_code == 403
    assert client.get(reverse("admin:django_celery_results_taskresult_delete", args=[result.pk])).status_code == 403
    result.refresh_from_db()
    assert result.status == "FAILURE"


def test_capped_paginator_counts_at_most_the_cap(monkeypatch, client, analyst):
    from backoffice.results.admin import CappedCountPaginator

    monkeypatch.setattr(CappedCountPaginator, "CAP", 2)
    for number in range(4):
        TaskResult.objects.create(task_id=f"t{number}", task_name="backoffice.ping", status="SUCCESS")
    client.force_login(analyst)

    response = client.get(CHANGELIST, {"status": "SUCCESS"})

    assert response.context["cl"].result_count == 2
    assert "More than 2 match" in response.content.decode()
