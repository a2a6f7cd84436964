import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django_celery_beat.models import PeriodicTask, PeriodicTasks
from django_celery_results.models import TaskResult

from backoffice.auditing import audit_message
from backoffice.console.models import TaskRun
from tests.schedules.helpers import form_data, interval, make_schedule

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:django_celery_beat_periodictask_changelist")


def stored_result(task_id, schedule, status, age):
    """A stored result finished `age` ago (date_done is auto_now, so it is set after the insert)."""
    result = TaskResult.objects.create(task_id=task_id, periodic_task_name=schedule, status=status)
    TaskResult.objects.filter(pk=result.pk).update(date_done=timezone.now() - age)
    return result


def change_url(task):
    return reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])


def test_the_change_page_shows_next_runs_last_result_counts_history_and_who_changed_it(client, operator):
    task = make_schedule("hourly ping", every=3600, ran_ago=600)
    stored_result("old", task.name, "FAILURE", timedelta(hours=2))
    latest = stored_result("new", task.name, "SUCCESS", timedelta(minutes=10))
    stored_result("ancient", task.name, "SUCCESS", timedelta(days=3))
    client.force_login(operator)
    client.post(change_url(task), form_data(task, description="checks the worker"))

    page = client.get(change_url(task)).content.decode()

    next_runs = re.search(r"<ol>(.*?)</ol>", page, re.S).group(1)
    assert next_runs.count("<li>") == 5
    first_run = timezone.localtime(task.last_run_at + timedelta(hours=1))
    assert date_format(first_run, "Y-m-d H:i:s") in next_runs  # to the second
    link = reverse("admin:django_celery_results_taskresult_change", args=[latest.pk])
    assert f'<a href="{link}">SUCCESS</a>' in page
    assert "1 succeeded, 1 failed" in page  # the 3-day-old success is outside the last day
    assert page.count(f'href="{reverse("admin:django_celery_results_taskresult_change", args=[latest.pk])}"') == 2
    assert "<td>operator</td><td>Changed Description.</td>" in page


def test_next_runs_follow_the_configured_time_zone_across_dst(settings):
    from django_celery_beat.models import CrontabSchedule

    from backoffice.schedules.selectors import schedule_next_runs

    settings.TIME_ZONE = "Europe/Berlin"
    task = PeriodicTask.objects.create(
        name="noon utc",
        task="backoffice.ping",
        crontab=CrontabSchedule.objects.create(minute="0", hour="12", timezone="UTC"),
    )
    start = datetime(2026, 3, 27, 13, 0, tzinfo=UTC)

    runs = [timezone.localtime(run) for run in schedule_next_runs(periodic_task=task, now=start, count=3)]

    assert [(run.day, run.hour, run.tzname()) for run in runs] == [(28, 13, "CET"), (29, 14, "CEST"), (30, 14, "CEST")]


def test_an_operator_edits_and_the_change_is_logged_and_signalled(client, operator):
    task = make_schedule()
    before = PeriodicTasks.last_change()
    client.force_login(operator)

    response = client.post(change_url(task), form_data(task, every="30", period="seconds"))

    assert response.status_code == 302
    task.refresh_from_db()
    assert task.interval.every == 30
    assert PeriodicTasks.last_change() != before
    entry = LogEntry.objects.get(object_id=str(task.pk), action_flag=CHANGE)
    assert entry.user == operator


def test_bulk_disable_and_enable_tell_beat_and_log_who_did_it(client, ops):
    first, second = make_schedule("a"), make_schedule("b")
    PeriodicTasks.update_changed()
    before = PeriodicTasks.last_change()
    client.force_login(ops)

    response = client.post(CHANGELIST, {"action": "disable_selected", "_selected_action": [first.pk, second.pk]})

    assert response.status_code == 302
    assert list(PeriodicTask.objects.filter(name__in=["a", "b"]).values_list("enabled", flat=True)) == [False, False]
    assert PeriodicTasks.last_change() > before
    assert [audit_message(e) for e in LogEntry.objects.filter(user=ops)] == ["Disabled.", "Disabled."]

    client.post(CHANGELIST, {"action": "enable_selected", "_selected_action": [first.pk]})
    assert PeriodicTask.objects.get(name="a").enabled is True
    assert PeriodicTask.objects.get(name="b").enabled is False


def test_bulk_delete_tells_beat(client, operator):
    task = make_schedule("doomed")
    PeriodicTasks.update_changed()
    before = PeriodicTasks.last_change()
    client.force_login(operator)

    client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [task.pk], "post": "yes"})

    assert not PeriodicTask.objects.filter(name="doomed").exists()
    assert PeriodicTasks.last_change() > before


def test_ops_may_toggle_but_not_edit(client, ops):
    task = make_schedule()
    client.force_login(ops)

    response = client.post(change_url(task), form_data(task, every="5", period="seconds"))

    assert response.status_code == 403
    task.refresh_from_db()
    assert task.interval.every == 3600
    changelist = client.get(CHANGELIST)
    actions = [name for name, _label in changelist.context["action_form"].fields["action"].choices]
    assert "disable_selected" in actions and "run_selected" not in actions and "delete_selected" not in actions


def test_analysts_read_but_cannot_change_toggle_run_or_add(client, analyst):
    task = make_schedule()
    client.force_login(analyst)

    page = client.get(change_url(task))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert 'id="run-now"' not in page.content.decode()
    assert client.post(change_url(task), form_data(task, every="5", period="seconds")).status_code == 403
    assert client.get(reverse("admin:django_celery_beat_periodictask_add")).status_code == 403
    assert client.post(reverse("admin:django_celery_beat_periodictask_run", args=[task.pk])).status_code == 403
    response = client.post(CHANGELIST, {"action": "disable_selected", "_selected_action": [task.pk]})
    assert response.status_code == 200  # "no action selected": the action is not offered to analysts
    task.refresh_from_db()
    assert (task.enabled, task.interval.every) == (True, 3600)
    assert not TaskRun.objects.exists()


def test_run_now_records_who_ran_it_and_links_to_the_live_result(client, operator, redis_client, on_commit):
    task = make_schedule(kwargs={"message": "by hand"})
    client.force_login(operator)

    with on_commit(execute=True):  # the run is published once its record commits
        response = client.post(reverse("admin:django_celery_beat_periodictask_run", args=[task.pk]))

    run = TaskRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("console:run", kwargs={"task_id": run.task_id})
    assert (run.task_name, run.kwargs, run.started_by, run.source, run.periodic_task_name) == (
        "backoffice.ping",
        {"message": "by hand"},
        operator,
        TaskRun.Source.SCHEDULE,
        task.name,
    )
    assert LogEntry.objects.filter(user=operator, object_id=str(run.pk)).exists()
    message = json.loads(redis_client.lindex("default", 0))
    assert message["headers"]["id"] == run.task_id
    assert message["headers"]["periodic_task_name"] == task.name


def test_run_now_is_a_post_only_path(client, operator):
    task = make_schedule()
    client.force_login(operator)

    assert client.get(reverse("admin:django_celery_beat_periodictask_run", args=[task.pk])).status_code == 405
    assert not TaskRun.objects.exists()


def test_schedules_are_picked_by_autocomplete_not_a_full_select(client, operator):
    client.force_login(operator)

    form = client.get(reverse("admin:django_celery_beat_periodictask_add")).context["adminform"].form

    assert "interval" not in form.fields  # its own every + period instead: see below
    assert type(form.fields["crontab"].widget.widget).__name__ == "AutocompleteSelect"
    assert type(form.fields["clocked"].widget).__name__ == "ForeignKeyRawIdWidget"


def test_changing_one_schedules_interval_leaves_the_schedules_sharing_it_alone(client, operator):
    shared = interval(60)
    tasks = [make_schedule(f"every minute {n}", every=60) for n in range(4)]
    client.force_login(operator)

    response = client.post(change_url(tasks[0]), form_data(tasks[0], every="5", period="seconds"))

    assert response.status_code == 302
    tasks[0].refresh_from_db()
    assert (tasks[0].interval.every, tasks[0].interval.period) == (5, "seconds")
    assert tasks[0].interval_id != shared.pk
    shared.refresh_from_db()
    assert (shared.every, shared.period) == (60, "seconds")
    assert {task.interval_id for task in PeriodicTask.objects.filter(pk__in=[t.pk for t in tasks[1:]])} == {shared.pk}


def test_an_interval_needs_both_its_number_and_its_period(client, operator):
    task = make_schedule("every minute", every=60)
    client.force_login(operator)

    response = client.post(change_url(task), form_data(task, every="5", period=""))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["period"] == ["Give both how many and of what."]
    task.refresh_from_db()
    assert task.interval.every == 60


def test_a_five_second_schedule_lists_five_different_next_runs(client, operator):
    task = make_schedule("fast ping", every=5, ran_ago=1)
    client.force_login(operator)

    page = client.get(change_url(task)).content.decode()

    runs = re.findall(r"<li>(.*?)</li>", re.search(r"<ol>(.*?)</ol>", page, re.S).group(1))
    assert len(runs) == len(set(runs)) == 5
