"""Headless Chromium: an operator changes a schedule and runs a task from the console; an analyst cannot."""

import pytest
from django_celery_beat.models import PeriodicTask
from playwright.sync_api import expect

from backoffice.console.models import TaskRun
from tests.accounts.staff import PASSWORD
from tests.browser import admin_login
from tests.schedules.helpers import make_schedule

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_an_operator_changes_a_schedule_and_runs_a_task_to_success(live_worker, live_server, page, operator):
    task = make_schedule("nightly ping", kwargs={"message": "night"})
    admin_login(page, live_server.url, "operator", PASSWORD)

    page.goto(f"{live_server.url}/admin/django_celery_beat/periodictask/{task.pk}/change/")
    page.fill("#id_kwargs", '{"message": "morning"}')
    page.click("input[name=_save]")
    page.wait_for_url("**/periodictask/")
    task.refresh_from_db()
    assert task.kwargs == '{"message": "morning"}'

    page.goto(f"{live_server.url}/admin/console/")
    page.click("text=backoffice.ping")
    page.fill("#id_args", '["from the browser"]')
    page.click("#run-submit")
    page.wait_for_url("**/admin/console/runs/**")
    # A locator, not wait_for_function("..."): that evaluates a string, which the pages' CSP (no 'unsafe-eval') refuses.
    expect(page.locator("#task-state")).to_have_text("SUCCESS", timeout=20_000)
    assert page.text_content("#task-result") == "'from the browser'"
    assert TaskRun.objects.get().started_by == operator


def test_an_analyst_finds_no_way_to_change_a_schedule_or_run_a_task(live_server, page, analyst):
    task = make_schedule("nightly ping")
    admin_login(page, live_server.url, "analyst", PASSWORD)

    page.goto(f"{live_server.url}/admin/django_celery_beat/periodictask/")
    assert page.locator("select[name=action]").count() == 0
    assert page.locator("text=Add periodic task").count() == 0
    page.goto(f"{live_server.url}/admin/django_celery_beat/periodictask/{task.pk}/change/")
    assert page.locator("input[name=_save]").count() == 0
    assert page.locator("#id_kwargs").count() == 0
    assert page.locator("#run-now").count() == 0

    response = page.goto(f"{live_server.url}/admin/console/tasks/backoffice.ping/")
    assert response.status == 403  # the console is not the analysts' (README's role table)
    assert page.locator("#run-form").count() == 0
    assert page.locator("#nav-sidebar a[href='/admin/console/']").count() == 0
    assert PeriodicTask.objects.get(pk=task.pk).kwargs == "{}"
    assert not TaskRun.objects.exists()
