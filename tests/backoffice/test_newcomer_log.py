"""The log a newcomer reads under `make run`: an expected 4xx is one line, nothing is printed twice,
setup_portal before Redis is up says so once, and the banner says where to sign in."""

import logging
import subprocess
import sys

import pytest
from django.conf import settings

from backoffice.banner import render
from backoffice.embedded_redis import free_port
from tests.accounts.staff import PASSWORD
from tests.processes import process_env


@pytest.mark.django_db
def test_a_forbidden_page_logs_one_line_without_a_traceback(client, analyst, caplog):
    client.login(username=analyst.username, password=PASSWORD)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.get("/ops/workers/")
    assert response.status_code == 403
    records = [r for r in caplog.records if r.name == "django.request"]
    assert [r.getMessage() for r in records] == ["Forbidden (Permission denied): /ops/workers/"]
    assert records[0].exc_info is None


@pytest.mark.django_db
def test_a_missing_page_logs_one_line(client, caplog):
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert client.get("/admin-nothing-here/").status_code == 404
    assert [r.exc_info for r in caplog.records if r.name == "django.request"] == [None]


def test_django_lines_go_through_the_root_handler_only():
    """Django's default config gives the `django` logger a console handler of its own besides the root's."""
    assert logging.getLogger("django").handlers == []
    assert logging.getLogger("django").propagate


def test_the_banner_says_where_the_portal_is_and_where_the_password_is():
    text = render(url="http://127.0.0.1:18000", username="admin", password_in_env=True)
    assert "http://127.0.0.1:18000/admin/" in text
    assert "User:      admin" in text
    assert "DJANGO_SUPERUSER_PASSWORD" in text


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_setup_portal_before_redis_is_up_says_so_once(tmp_path):
    """`make run` runs setup_portal --demo before it starts the embedded Redis: one line, not a warning per
    demo order."""
    env = process_env(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", DJANGO_SUPERUSER_PASSWORD=PASSWORD)
    result = subprocess.run(  # noqa: S603 - our interpreter, fixed arguments
        [sys.executable, "manage.py", "setup_portal", "--demo"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "broker unavailable" not in output
    assert output.count("broker not up yet") == 1
    assert "orders demo: 7 orders" in output
