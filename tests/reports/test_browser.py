"""The analyst's report email of the known day, rendered in headless Chromium: it loads nothing from outside,
runs no script, logs no error, and its bars and figures are laid out. `SCREENSHOTS_DIR=docs` writes
docs/report.png (shown in the README); otherwise the screenshot goes to the test's temporary directory."""

import os
from pathlib import Path

import pytest
from django.conf import settings

from backoffice.accounts.roles import ANALYSTS, OPS
from backoffice.reports import services
from tests.reports.conftest import SEND_AT

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


@pytest.fixture
def screenshots(tmp_path) -> Path:
    target = os.environ.get("SCREENSHOTS_DIR")
    return Path(settings.BASE_DIR) / target if target else tmp_path


def test_the_report_email_renders_in_chromium_with_nothing_fetched(known_day, role_user, mailoutbox, page, screenshots):
    analyst = role_user(ANALYSTS)
    report = services.report_create(name="Daily digest", kind="daily", subscribers=[analyst])
    services.report_send(report_id=report.pk, now=SEND_AT)
    html = mailoutbox[0].alternatives[0][0]
    requests, errors = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.set_viewport_size({"width": 720, "height": 900})

    page.set_content(html, wait_until="load")

    assert requests == [] and errors == []  # no external image, font or script: what a mail client shows
    assert page.inner_text("#revenue") == "40.00"
    bar_widths = page.eval_on_selector_all(
        "#orders-by-status td[style*='background']", "cells => cells.map(cell => cell.getBoundingClientRect().width)"
    )
    assert len(bar_widths) == 4 and max(bar_widths) == pytest.approx(2 * min(bar_widths), rel=0.02)  # paid: 2, others 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 720  # nothing clipped sideways
    screenshots.mkdir(exist_ok=True)
    page.screenshot(path=str(screenshots / "report.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_ops_asks_for_a_preview_on_the_report_page(live_server, redis_client, role_user, page, screenshots):
    from tests.accounts.staff import PASSWORD
    from tests.browser import admin_login

    ops = role_user(OPS, "ops-reports")
    report = services.report_create(name="Daily digest", kind="daily")
    errors, refused = [], []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("response", lambda r: r.status >= 400 and not r.url.endswith("/favicon.ico") and refused.append(r.url))
    page.set_viewport_size({"width": 1440, "height": 900})
    admin_login(page, live_server.url, ops.username, PASSWORD)

    page.goto(f"{live_server.url}/admin/portal_reports/report/{report.pk}/change/")
    page.click("#send-preview")

    page.wait_for_selector(".messagelist .success")
    assert f"on its way to {ops.email}" in page.inner_text(".messagelist")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1440
    assert refused == []
    assert [text for text in errors if not text.startswith("Failed to load resource")] == []  # the favicon's 404
