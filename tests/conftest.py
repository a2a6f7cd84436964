"""Fixtures shared by the whole suite. Real processes live in tests/processes.py."""

import itertools

import pytest
import redis
from django.conf import settings

from backoffice.accounts.roles import ANALYSTS, OPERATORS, OPS
from backoffice.embedded_redis import free_port
from tests import processes
from tests.accounts.staff import SUPERUSER, staff_user


@pytest.fixture
def redis_client():
    """The test Redis, emptied before the test so queues and locks from earlier tests cannot leak in."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    if settings.BROKER_IS_AMQP:  # RabbitMQ keeps its queues apart from Redis: empty those too
        from backoffice.celery import app

        with app.connection_for_write() as conn:
            for queue in settings.CELERY_TASK_QUEUES:
                bound = queue(conn.default_channel)
                bound.declare()  # as a worker declares it; purging a queue not yet declared is an error
                bound.purge()
    yield client
    client.close()


@pytest.fixture
def live_worker(transactional_db, redis_client, tmp_path):
    """A real Celery worker process on all queues, against the test database and Redis."""
    proc = processes.worker(tmp_path)
    yield proc
    proc.stop()


@pytest.fixture
def live_beat(transactional_db, redis_client, tmp_path):
    proc = processes.beat(tmp_path)
    yield proc
    proc.stop()


@pytest.fixture
def live_web(transactional_db, redis_client, tmp_path):
    """gunicorn serving the portal on a free port; `.url` is its base URL."""
    port = free_port()
    proc = processes.web(tmp_path, port)
    proc.url = f"http://127.0.0.1:{port}"
    yield proc
    proc.stop()


@pytest.fixture
def role_user(db):
    """`role_user(role)`: a new staff member in that role's group, which holds exactly the permissions of the real
    role matrix (every app's roles.py, installed as setup_portal does). `role_user(None)`: staff without any role;
    `role_user(SUPERUSER)`: a superuser. Password: tests.accounts.staff.PASSWORD."""
    made = itertools.count(1)

    def make(role: str | None, username: str | None = None):
        name = username or f"{(role or 'staff').lower()}-{next(made)}"
        if role == SUPERUSER:
            return staff_user(name, superuser=True)
        return staff_user(name, role=role)

    return make


@pytest.fixture
def operator(role_user):
    return role_user(OPERATORS, "operator")


@pytest.fixture
def analyst(role_user):
    return role_user(ANALYSTS, "analyst")


@pytest.fixture
def ops(role_user):
    return role_user(OPS, "ops")


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Run on-commit callbacks (task enqueues) captured during the block: `with on_commit(execute=True):`."""
    return django_capture_on_commit_callbacks


def pytest_runtest_makereport(item, call):
    """Print the logs of live processes when a test using them fails."""
    if call.when != "call" or call.excinfo is None:
        return
    for name in ("live_worker", "live_beat", "live_web"):
        proc = item.funcargs.get(name) if hasattr(item, "funcargs") else None
        if proc is not None:
            item.add_report_section("call", name, proc.log()[-8000:])


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the run (Playwright's sync API, Debian's browser binary)."""
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    """A fresh browser context and page per test (no cookies shared between tests)."""
    context = chromium.new_context(accept_downloads=True, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
