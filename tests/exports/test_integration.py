"""The real thing: a Celery worker process runs the export, the browser follows it in the admin."""

import pytest
from celery.result import AsyncResult
from django.core.cache import cache

from backoffice.exports import services
from backoffice.exports.models import ExportJob
from tests import processes
from tests.browser import admin_login
from tests.exports.conftest import read_csv

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# The worker honours EXPORTS_MAX_ROWS_PER_SECOND, so a few thousand rows take a few seconds: long enough
# to see the job in flight, whatever the machine's speed.
RATE = "1500"


@pytest.fixture
def slow_export_worker(transactional_db, redis_client, tmp_path, exports_root):
    proc = processes.worker(
        tmp_path,
        queues="default,exports",
        concurrency=1,
        EXPORTS_ROOT=str(exports_root),
        EXPORTS_MAX_ROWS_PER_SECOND=RATE,
    )
    yield proc
    proc.stop()


def test_cancel_stops_the_running_job_and_removes_its_partial_file(
    slow_export_worker, make_analyst, make_results, exports_root
):
    make_results(*({} for _ in range(9000)))
    user = make_analyst()
    job = services.export_job_create(user=user, target_key="results", query_string="", columns=["id", "result"])

    processes.wait_for(
        lambda: (
            (cache.get(services.progress_key(job.pk)) or {}).get("rows", 0) > 0 and any(exports_root.glob("*.part"))
        ),
        timeout=30,
        message="the job to be writing its partial file",
    )
    assert services.export_job_cancel(job_id=job.pk, user=user) is True

    assert AsyncResult(job.task_id).get(timeout=30) == "cancelled"
    job.refresh_from_db()
    assert job.status == ExportJob.Status.CANCELLED and job.file_name == ""
    assert list(exports_root.iterdir()) == []


def test_analyst_filters_the_ledger_exports_watches_progress_and_downloads(
    slow_export_worker, live_server, page, make_analyst, make_ledger, tmp_path
):
    make_ledger(["award", "redeem"] * 4000)
    make_analyst()
    admin_login(page, live_server.url, "analyst", "pw-analyst")

    page.goto(f"{live_server.url}/admin/points/ledgerentry/")
    page.locator("#changelist-filter").get_by_role("link", name="redeem", exact=True).click()
    page.wait_for_url(lambda url: "kind" in url)
    page.get_by_role("link", name="Export in background").click()
    page.wait_for_url(lambda url: "/admin/exports/new/ledger/" in url)
    assert "4000 rows of Points ledger will be exported" in page.locator("#export-summary").inner_text()
    page.click("#start-export")
    page.wait_for_url(lambda url: "/admin/exports/jobs/" in url)

    seen = set()

    def finished():
        value = page.locator("#export-progress").get_attribute("value")  # none while preparing the rows
        seen.add(None if value is None else int(value))
        return page.locator("#export-status").get_attribute("data-status") in ("done", "failed", "cancelled")

    processes.wait_for(finished, timeout=60, interval=0.1, message="the export to finish")
    assert page.locator("#export-status").get_attribute("data-status") == "done"
    assert any(value and 0 < value < 4000 for value in seen), seen  # the bar moved while the job ran
    assert page.locator("#export-progress").get_attribute("max") == "4000"
    assert page.locator("#export-progress").get_attribute("value") == "4000"

    with page.expect_download() as download_info:
        page.click("#export-download")
    path = tmp_path / "download.csv"
    download_info.value.save_as(path)
    header, *rows = read_csv(path)
    assert len(rows) == 4000
    assert header[:2] == ["ID", "Serial number"]
    assert {row[header.index("Kind")] for row in rows} == {"redeem"}
    assert {row[header.index("Amount")] for row in rows} == {"-5"}
