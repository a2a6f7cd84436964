"""In headless Chromium, as ops: the dashboard, then Flower inside the portal listing the running worker.
`make screenshots` runs it with SCREENSHOTS_DIR=docs to refresh the README's pictures; otherwise the
screenshots go to the test's temporary directory, so a test run never changes the work tree."""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from backoffice.accounts.roles import OPS
from backoffice.ops.services import dashboard_refresh
from backoffice.tasks import ping_task
from tests.accounts.staff import PASSWORD, staff_user
from tests.browser import admin_login

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def screenshots(tmp_path) -> Path:
    target = os.environ.get("SCREENSHOTS_DIR")
    return Path(settings.BASE_DIR) / target if target else tmp_path


def test_ops_sees_the_dashboard_and_the_worker_in_embedded_flower(
    live_server, live_worker, live_flower, page, screenshots
):
    call_command("setup_portal", "--demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    for n in range(5):
        ping_task.delay(f"demo {n}").get(timeout=20)
    dashboard_refresh()
    staff_user("ops-browser", role=OPS)
    page.set_viewport_size({"width": 1400, "height": 1000})

    admin_login(page, live_server.url, "ops-browser", PASSWORD)
    page.goto(f"{live_server.url}/admin/")
    page.wait_for_selector("#panel-workers")
    assert live_worker.hostname in page.inner_text("#panel-workers")
    assert "backoffice.ping" in page.inner_text("#panel-tasks")
    screenshots.mkdir(exist_ok=True)
    page.screenshot(path=str(screenshots / "dashboard.png"), full_page=True)

    page.click("text=Flower")  # the portal's navigation link to the framed page
    page.wait_for_url("**/ops/monitor/")
    frame = page.frame_locator("#flower-frame")
    frame.locator(f"text={live_worker.hostname}").first.wait_for(timeout=30_000)
    assert page.locator("#nav-sidebar").is_visible() or page.locator("#header").is_visible()
    page.screenshot(path=str(screenshots / "flower.png"), full_page=False)


def test_flower_tasks_tab_inside_the_portal_lists_tasks_and_offers_no_control(
    live_server, live_worker, live_flower, page
):
    results = [ping_task.delay(f"tasks tab {n}") for n in range(3)]
    for result in results:
        result.get(timeout=20)
    staff_user("ops-tasks", role=OPS)
    page.set_viewport_size({"width": 1440, "height": 900})
    failed = []
    page.on("response", lambda response: failed.append(response.url) if response.status >= 400 else None)
    admin_login(page, live_server.url, "ops-tasks", PASSWORD)

    page.goto(f"{live_server.url}/ops/monitor/")
    frame = page.frame_locator("#flower-frame")
    frame.locator("a.nav-link[href$='/tasks']").click()  # Flower's own Tasks tab
    frame.locator(f"#tasks-table tbody tr[id='{results[0].id}']").wait_for(timeout=30_000)

    assert frame.locator("#tasks-table tbody tr").count() >= 3
    assert failed == []  # the table's POST passed the portal's CSRF check and reached Flower
    # A task's page: no Revoke or Terminate.
    frame.locator(f"#tasks-table tbody tr[id='{results[0].id}'] a[title='{results[0].id}']").click()
    frame.locator("#task-page").wait_for()
    assert frame.locator("#task-revoke, #task-terminate").count() == 0
