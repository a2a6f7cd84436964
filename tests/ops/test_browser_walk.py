"""The walk a staff member makes, in headless Chromium at 1440x900 on demo data: for each role, sign in and
open every page the navigation offers that role. Each page answers 200, its results table fits its container,
the page is no wider than the window, the browser console shows no error and no request of the page fails
(framed Flower's requests included).

The demo data, a worker, Flower and gunicorn are set up once for the module. With SCREENSHOTS_DIR set
(`make screenshots` sets docs/), every page goes to $SCREENSHOTS_DIR/walk/<role>/ (not committed) and the
README's pictures to $SCREENSHOTS_DIR itself; without it, all go to the test's temporary directory.
"""

import contextlib
import itertools
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from backoffice.accounts.roles import ANALYSTS, OPERATORS, OPS
from backoffice.embedded_redis import free_port
from backoffice.ops.services import dashboard_refresh
from backoffice.tasks import ping_task
from tests import processes
from tests.accounts.staff import PASSWORD, staff_user
from tests.browser import admin_login

# The test's own transaction (it only reads) leaves the module's data alone; the database is set up for it.
pytestmark = [pytest.mark.slow, pytest.mark.django_db]

VIEWPORT = {"width": 1440, "height": 900}
FLOWER_AUTH = "portal:flower-secret-for-the-walk"
SUPERUSER = "superuser"
ROLES = [SUPERUSER, OPERATORS, ANALYSTS, OPS]

# The README's pictures: (role, path) -> file name under SCREENSHOTS_DIR.
README_PICTURES = {(SUPERUSER, "/admin/"): "dashboard.png", (OPS, "/ops/monitor/"): "flower.png"}


@dataclass
class Visit:
    path: str
    problems: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def demo_portal(django_db_setup, django_db_blocker, tmp_path_factory):
    """Demo data and one staff member per role, a worker, Flower and gunicorn, once for the module."""
    tmp = tmp_path_factory.mktemp("walk")
    broker = redis.Redis.from_url(settings.REDIS_URL)
    broker.flushdb()
    started = []
    with django_db_blocker.unblock():
        try:
            with open(os.devnull, "w") as quiet:
                call_command("setup_portal", "--demo", stdout=quiet)
            users = {
                role: staff_user(
                    f"walk-{role.lower()}", role=None if role == SUPERUSER else role, superuser=role == SUPERUSER
                )
                for role in ROLES
            }
            started.append(processes.worker(tmp))
            flower_port = free_port()
            started.append(processes.flower(tmp, flower_port, FLOWER_AUTH))
            flower_env = {"FLOWER_URL": f"http://127.0.0.1:{flower_port}/ops/flower", "FLOWER_BASIC_AUTH": FLOWER_AUTH}
            web_port = free_port()
            started.append(processes.web(tmp, web_port, **flower_env))
            for n in range(3):
                ping_task.delay(f"walk {n}").get(timeout=30)
            dashboard_refresh()
            yield f"http://127.0.0.1:{web_port}", users
        finally:
            for proc in reversed(started):
                proc.stop()
            call_command("flush", "--no-input", verbosity=0)  # as a transactional test leaves the database
            broker.flushdb()
            broker.close()


@pytest.fixture
def screenshots(tmp_path) -> Path:
    target = os.environ.get("SCREENSHOTS_DIR")
    return Path(settings.BASE_DIR) / target if target else tmp_path


def navigation_paths(page, base_url: str) -> list[str]:
    """The dashboard, then every link of its app list (models and declared pages), as the portal shows them."""
    page.goto(f"{base_url}/admin/")
    links = page.eval_on_selector_all(
        "#content-main th[scope=row] a", "links => links.map(link => link.getAttribute('href'))"
    )
    return ["/admin/", *dict.fromkeys(links)]


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "index"


def _layout_problems(page) -> list[str]:
    found = page.evaluate(
        """() => {
          const problems = [];
          const doc = document.documentElement;
          if (doc.scrollWidth > window.innerWidth + 1)
            problems.push(`page ${doc.scrollWidth}px wide in a ${window.innerWidth}px window`);
          const table = document.querySelector('#result_list');
          if (table) {
            const box = table.closest('.results') || table.parentElement;
            if (table.scrollWidth > box.clientWidth + 1)
              problems.push(`results table ${table.scrollWidth}px wide in a ${box.clientWidth}px container`);
          }
          for (const panel of document.querySelectorAll('#dashboard .panel-body'))
            if (panel.scrollWidth > panel.clientWidth + 1)
              problems.push(`${panel.parentElement.id} clipped: ${panel.scrollWidth}px in ${panel.clientWidth}px`);
          return problems;
        }"""
    )
    return list(found)


def _aborted_by_navigation(request) -> bool:
    """Leaving a page cancels what it was still polling (framed Flower's refresh): not a failure of either page."""
    return request.failure == "net::ERR_ABORTED"


def walk(page, base_url: str, user, role: str, screenshots: Path) -> list[Visit]:
    visits: list[Visit] = []

    def note(problem: str) -> None:
        if visits:
            visits[-1].problems.append(problem)

    page.on("console", lambda message: message.type == "error" and note(f"console error: {message.text}"))
    page.on("pageerror", lambda error: note(f"script error: {error}"))
    page.on("requestfailed", lambda request: _aborted_by_navigation(request) or note(f"request failed: {request.url}"))
    page.on(
        "response",
        lambda response: response.status >= 400 and note(f"{response.status} {response.request.method} {response.url}"),
    )
    page.set_viewport_size(VIEWPORT)
    admin_login(page, base_url, user.username, PASSWORD)
    every_page = screenshots / "walk" / _slug(role)
    every_page.mkdir(parents=True, exist_ok=True)
    for number, path in zip(itertools.count(1), navigation_paths(page, base_url)):
        visits.append(Visit(path))
        response = page.goto(base_url + path, wait_until="load")
        if response is None or response.status != 200:
            note(f"answered {response.status if response else 'nothing'}")
        with contextlib.suppress(PlaywrightTimeout):  # a page that polls never goes idle: checked as loaded
            page.wait_for_load_state("networkidle", timeout=10_000)
        if page.locator("#flower-frame").count():  # framed Flower: its Tasks tab loads its table by POST
            frame = page.frame_locator("#flower-frame")
            frame.get_by_role("link", name="Tasks", exact=True).first.click()
            try:  # the module's set-up ran backoffice.ping under this Flower's eyes
                frame.locator("td", has_text="backoffice.ping").first.wait_for(timeout=15_000)
            except PlaywrightTimeout:
                note("Flower's Tasks tab lists no task")
        for problem in _layout_problems(page):
            note(problem)
        picture = every_page / f"{number:02d}-{_slug(path)}.png"
        page.screenshot(path=str(picture), full_page=True)
        if (role, path) in README_PICTURES:
            shutil.copyfile(picture, screenshots / README_PICTURES[role, path])
    return visits


@pytest.mark.parametrize("role", ROLES)
def test_each_role_walks_every_page_of_its_navigation(demo_portal, page, screenshots, role):
    base_url, users = demo_portal
    visits = walk(page, base_url, users[role], role, screenshots)
    assert len(visits) > 1, "the navigation offered no page"
    failing = {visit.path: visit.problems for visit in visits if visit.problems}
    assert not failing, "\n".join(f"{path}: {'; '.join(problems)}" for path, problems in failing.items())
