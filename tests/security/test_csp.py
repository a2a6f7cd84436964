"""A Content Security Policy on every portal page, under which the dashboard, Flower framed in the portal and
the admin's change forms all work: headless Chromium reports no violation on any of them."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from backoffice.ops.services import dashboard_refresh
from tests.accounts.staff import PASSWORD, staff_user
from tests.browser import admin_login

pytestmark = pytest.mark.django_db(transaction=True)

# Every violation in the page or any frame, recorded by the browser itself (an init script runs in each frame).
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  const where = `${event.sourceFile}:${event.lineNumber}`;
  window.__cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI} at ${where}`);
});
"""


def test_every_portal_page_sends_a_policy(client, admin_user):
    client.force_login(admin_user)

    for path in ("/admin/", "/admin/login/", "/ops/monitor/", "/admin/points/action/add/"):
        policy = client.get(path)["Content-Security-Policy"]
        scripts = policy.split("script-src ", 1)[1].split(";", 1)[0]
        assert scripts.startswith("'self'")
        assert "unsafe" not in scripts
        assert "frame-ancestors 'none'" in policy
    # A page with an inline script carries the nonce that lets exactly that script run.
    page = client.get("/admin/points/action/add/")
    nonce = page["Content-Security-Policy"].split("'nonce-", 1)[1].split("'", 1)[0]
    assert f'<script nonce="{nonce}">' in page.content.decode()


@pytest.mark.slow
def test_dashboard_flower_and_admin_change_forms_run_without_a_violation(
    live_server,
    live_worker,
    live_flower,
    page,
):
    call_command("setup_portal", stdout=open("/dev/null", "w"))  # noqa: SIM115 - default schedules to edit
    dashboard_refresh()
    staff_user("csp-root", superuser=True)
    console = []
    page.on("console", lambda message: console.append(message.text))
    page.context.add_init_script(RECORD_VIOLATIONS)
    admin_login(page, live_server.url, "csp-root", PASSWORD)
    seen = {}

    def visit(path: str, ready: str) -> None:
        response = page.goto(f"{live_server.url}{path}")
        assert "Content-Security-Policy" in {name.title(): value for name, value in response.headers.items()} or (
            "content-security-policy" in response.headers
        ), path
        page.wait_for_selector(ready)
        seen[path] = [v for frame in page.frames for v in (frame.evaluate("window.__cspViolations || []"))]

    visit("/admin/", "#panel-workers")
    visit("/ops/monitor/", "#flower-frame")
    frame = page.frame_locator("#flower-frame")
    frame.locator(f"text={live_worker.hostname}").first.wait_for(timeout=30_000)  # Flower's own scripts ran
    seen["/ops/monitor/ (Flower loaded)"] = [v for f in page.frames for v in f.evaluate("window.__cspViolations")]
    visit("/admin/points/action/add/", "#points-url-test")
    page.fill("#id_path_pattern", r"^/api/posts/(?P<business_id>\d+)/like/$")
    page.fill("#points-test-path", "/api/posts/42/like/")
    page.locator("#points-test-path").dispatch_event("input")
    schedule = PeriodicTask.objects.order_by("pk").first()
    visit(f"/admin/django_celery_beat/periodictask/{schedule.pk}/change/", "#periodictask_form")

    assert {path: found for path, found in seen.items() if found} == {}
    assert [text for text in console if "Content Security Policy" in text] == []


def _templates():
    """The templates of pages. Email bodies (`*/email/*.html`) are never served under the policy, and mail clients
    need their inline styles."""
    base = Path(settings.BASE_DIR)
    for folder in ("templates", "backoffice", "points", "orders"):
        yield from (path for path in (base / folder).rglob("*.html") if path.parent.name != "email")


def test_no_template_needs_unsafe_inline():
    """The policy has no 'unsafe-inline': an inline script without the nonce, a style attribute or an inline
    event handler in any of the portal's templates would be blocked (and reported as a console error)."""
    found = []
    for template in _templates():
        text = template.read_text()
        found += [f"{template.name}: {m.group(0)}" for m in re.finditer(r"<script(?![^>]*\b(src|nonce)=)[^>]*>", text)]
        found += [f"{template.name}: {m.group(0)}" for m in re.finditer(r"\s(style|on[a-z]+)=\"[^\"]*\"", text)]

    assert found == []
