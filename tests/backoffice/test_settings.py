"""Production settings: refuse to start when unsafe, and pass Django's deployment checks when set."""

import secrets
import subprocess
import sys

import pytest
from django.conf import settings

GOOD_KEY = secrets.token_urlsafe(50)


def run_manage(*args: str, tmp_path, **env: str) -> subprocess.CompletedProcess:
    base = {
        "PATH": "/usr/bin:/bin",
        "ENV_FILE": "/dev/null",  # a developer's .env must not supply what the test leaves out
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"ALLOWED_HOSTS": "portal.example.com"}, "SECRET_KEY must be set"),
        ({"ALLOWED_HOSTS": "portal.example.com", "SECRET_KEY": "short"}, "SECRET_KEY must be set"),
        ({"ALLOWED_HOSTS": "portal.example.com", "SECRET_KEY": "a" * 60}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": GOOD_KEY}, "ALLOWED_HOSTS must be set"),
    ],
    ids=["missing-key", "short-key", "weak-key", "no-hosts"],
)
def test_production_refuses_to_start_without_safe_settings(tmp_path, env, complaint):
    result = run_manage("check", tmp_path=tmp_path, DEBUG="0", **env)

    assert result.returncode != 0
    assert complaint in result.stderr


def test_production_settings_pass_the_deploy_checks_at_warning_level(tmp_path):
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        tmp_path=tmp_path,
        DEBUG="0",
        SECRET_KEY=GOOD_KEY,
        ALLOWED_HOSTS="portal.example.com",
    )

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)" in result.stdout
