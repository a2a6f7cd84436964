"""`make run`: the real environment wins over .env, as the README promises (honcho alone loads .env on top)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)
# Prints what it was given, then stops its process group as Ctrl-C would, so keepalive does not restart it and
# honcho (hence make) ends.
SHOW = (
    "import os, signal; "
    "print('secret=' + os.environ['PAYMENT_WEBHOOK_SECRET'], 'file_only=' + os.environ['ONLY_IN_FILE'], flush=True); "
    "os.killpg(os.getpgid(0), signal.SIGTERM)"
)


@pytest.fixture
def project(tmp_path):
    """The Makefile beside the project's code and venv, with a .env and a Procfile of one process that prints
    what it was given (so `make run` starts nothing else)."""
    shutil.copy(BASE_DIR / "Makefile", tmp_path / "Makefile")
    for name in ("backoffice", ".venv"):
        (tmp_path / name).symlink_to(BASE_DIR / name)
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "keepalive.py").symlink_to(BASE_DIR / "deploy" / "keepalive.py")
    (tmp_path / "deploy" / "Procfile").write_text(f'show: {sys.executable} -c "{SHOW}"\n')
    (tmp_path / ".env").write_text("PAYMENT_WEBHOOK_SECRET=from-the-file\nONLY_IN_FILE=kept\n")
    return tmp_path


def make_run(project: Path, **environment: str) -> str:
    env = {key: value for key, value in os.environ.items() if key not in ("PAYMENT_WEBHOOK_SECRET", "ENV_FILE")}
    env.update(environment, REDIS_URL="redis://127.0.0.1:1/0")  # no embedded Redis among the processes
    # -o setup: take the set-up (migrations, static files) as done; this is about how processes are started.
    result = subprocess.run(  # noqa: S603
        ["make", "--no-print-directory", "-o", "setup", "run", "PROCESSES=show"],  # noqa: S607
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout + result.stderr


def test_a_secret_given_in_the_environment_beats_the_one_in_dot_env(project):
    output = make_run(project, PAYMENT_WEBHOOK_SECRET="from-the-environment")

    assert "secret=from-the-environment" in output, output
    assert "from-the-file" not in output
    assert "file_only=kept" in output  # what only the file sets still reaches the processes


def test_without_it_in_the_environment_the_file_still_supplies_it(project):
    output = make_run(project)

    assert "secret=from-the-file file_only=kept" in output, output
