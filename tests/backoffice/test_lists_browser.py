"""In headless Chromium at 1440x900, on demo data: every busy changelist fits its container (no sideways scroll),
with every column still shown and the filter sidebar beside it."""

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_results.models import TaskResult

from backoffice.console.models import TaskRun
from backoffice.exports.models import ExportJob
from tests.accounts.staff import PASSWORD, staff_user
from tests.browser import admin_login

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHANGELISTS = [
    "/admin/points/rule/",
    "/admin/points/ledgerentry/",
    "/admin/orders/order/",
    "/admin/points/actionrecord/",
    "/admin/portal_exports/exportjob/",
    "/admin/django_celery_results/taskresult/",
    "/admin/django_celery_beat/periodictask/",
    "/admin/portal_console/taskrun/",
]


def _busy_rows() -> None:
    """Rows with the widest values each list meets in a real day: UUIDs, long task names, long filters."""
    now = timezone.now()
    user = get_user_model().objects.get(username="admin")
    for n in range(5):
        task_id = str(uuid.uuid4())
        TaskResult.objects.create(
            task_id=task_id, task_name="points.events_process_batch", periodic_task_name="points: process events",
            status="SUCCESS", worker="celery@backoffice-worker-1.example.internal", date_done=now,
            result='{"processed": 500}',
        )  # fmt: skip
        TaskRun.objects.create(
            task_id=task_id, task_name="orders.expire_overdue", source="console", started_by=user,
            eta=now + timedelta(minutes=n),
        )  # fmt: skip
        ExportJob.objects.create(
            target="ledger", created_by=user, status=ExportJob.Status.DONE, rows_total=123_456,
            rows_written=123_456, size_bytes=9_876_543, started_at=now, finished_at=now + timedelta(seconds=42),
            query_string="created_at__gte=2026-01-01+00%3A00%3A00%2B00%3A00&kind__exact=award&account__user__username=alice",
        )  # fmt: skip
    PeriodicTask.objects.update(last_run_at=now)


def test_every_busy_changelist_fits_1440px_without_hiding_a_column(live_server, page):
    call_command("setup_portal", "--demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    _busy_rows()
    staff_user("root-lists", superuser=True)
    page.set_viewport_size({"width": 1440, "height": 900})
    admin_login(page, live_server.url, "root-lists", PASSWORD)

    too_wide = {}
    for url in CHANGELISTS:
        page.goto(f"{live_server.url}{url}")
        page.wait_for_selector("#result_list tbody tr")
        table, container = page.evaluate(
            "() => { const t = document.querySelector('#result_list');"
            " return [t.scrollWidth, t.closest('.results, #changelist-form, #content-main').clientWidth]; }"
        )
        if table > container:
            too_wide[url] = (table, container)
        assert page.locator("#result_list thead th:not(.action-checkbox-column)").count() >= 3, url
        if page.locator("#changelist-filter").count():
            assert page.locator("#changelist-filter").is_visible(), url
    assert too_wide == {}
