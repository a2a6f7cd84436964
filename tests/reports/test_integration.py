"""A real worker that consumes only the `reports` queue (the long-work worker of deploy/Procfile) sends a report,
and the same task delivered again (a redelivery, a retry, a second beat) sends nothing more."""

import pytest

from backoffice.accounts.roles import ANALYSTS, OPS
from backoffice.reports import services
from backoffice.reports.models import ReportDelivery
from backoffice.reports.tasks import report_send_task
from tests import processes

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CONSOLE_EMAIL = "django.core.mail.backends.console.EmailBackend"  # the worker prints each email to its log


def test_the_reports_worker_sends_each_copy_once_when_the_task_comes_twice(redis_client, tmp_path, role_user):
    analyst, ops = role_user(ANALYSTS), role_user(OPS)
    report = services.report_create(name="Morning digest", kind="daily", subscribers=[analyst, ops])
    worker = processes.worker(tmp_path, queues="reports", concurrency=1, EMAIL_BACKEND=CONSOLE_EMAIL)
    try:
        first = report_send_task.delay(report_id=report.pk, period_start="2026-11-28")
        again = report_send_task.delay(report_id=report.pk, period_start="2026-11-28")

        try:
            outcomes = [first.get(timeout=60), again.get(timeout=60)]
        except Exception as exc:
            raise AssertionError(f"{exc!r}; the worker's log:\n{worker.log()[-6000:]}") from exc
        log = worker.log()
    finally:
        worker.stop()
    assert outcomes == [
        {"period_start": "2026-11-28", "sent": 2, "skipped": 0, "failed": 0},
        {"period_start": "2026-11-28", "sent": 0, "skipped": 2, "failed": 0},
    ]
    assert log.count("Subject: Morning digest: 2026-11-28") == 2
    assert sorted(ReportDelivery.objects.values_list("recipient__username", "status")) == sorted(
        [(analyst.username, "sent"), (ops.username, "sent")]
    )
