"""Real processes for integration tests: a Celery worker, beat and the web server, as `make run` starts them.

Each process gets the test database (its URL rebuilt from Django's live connection settings) and the
test Redis, writes its output to a log file that a failing test prints, and is stopped with its whole
process group at teardown, so no child survives a test.
"""

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from django.conf import settings
from django.db import connection

from tests.waiting import wait_for  # noqa: F401 - tests call it as processes.wait_for

BASE_DIR = Path(settings.BASE_DIR)


def database_url() -> str:
    """The URL of the database the tests are using right now (the test database, not the configured one)."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def process_env(**extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "backoffice.settings",
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DEBUG": "1",
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "INFO",
    }
    env.update(extra)
    return env


@dataclass
class Process:
    name: str
    args: list[str]
    log_path: Path
    popen: subprocess.Popen | None = None
    extra_env: dict = field(default_factory=dict)

    def start(self) -> "Process":
        self.log_file = self.log_path.open("wb")
        self.popen = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
            self.args,
            cwd=BASE_DIR,
            env=process_env(**self.extra_env),
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() reaches pool children too
        )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def is_running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.is_running():
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen is None:
            return
        if self.is_running():
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.popen.wait(5)
        with contextlib.suppress(ProcessLookupError):  # children left behind (a pool whose parent died)
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.log_file.close()


def celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "backoffice", *args]


ALL_QUEUES = ",".join(queue.name for queue in settings.CELERY_TASK_QUEUES)


def worker(tmp_path: Path, *, queues: str = ALL_QUEUES, concurrency: int = 2, **extra_env) -> Process:
    """A worker started as deploy/Procfile does (by default on every queue, fast and long), under a unique name;
    returns once it answers a ping."""
    from backoffice.celery import app

    name = f"test-{uuid.uuid4().hex[:8]}@localhost"
    proc = Process(
        name="worker",
        args=celery(
            "worker",
            "--queues",
            queues,
            "--events",
            "--loglevel",
            "INFO",
            "--concurrency",
            str(concurrency),
            "--hostname",
            name,
            "--without-mingle",
            "--without-gossip",
        ),
        log_path=tmp_path / f"worker-{name}.log",
        extra_env=extra_env,
    ).start()
    proc.hostname = name
    try:
        wait_for(
            lambda: proc.is_running() and app.control.ping(destination=[name], timeout=0.5),
            timeout=30,
            message=f"worker {name} to answer a ping",
        )
    except AssertionError:
        proc.stop()
        raise AssertionError(f"worker did not start:\n{proc.log()}") from None
    return proc


def beat(tmp_path: Path, *, label: str = "beat", **extra_env) -> Process:
    return Process(
        name=label,
        args=celery("beat", "--loglevel", "INFO", "--pidfile=", "--schedule", str(tmp_path / f"{label}.db")),
        log_path=tmp_path / f"{label}.log",
        extra_env=extra_env,
    ).start()


def answering(proc: Process, url: str, *, timeout: float = 30) -> Process:
    """Return the process once `url` answers 200; else stop it and fail with its log."""

    def answers() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(lambda: proc.is_running() and answers(), timeout=timeout, message=f"{proc.name} to answer")
    except AssertionError:
        proc.stop()
        raise AssertionError(f"{proc.name} did not start:\n{proc.log()}") from None
    return proc


def web(tmp_path: Path, port: int, **extra_env) -> Process:
    """gunicorn as in deploy/Procfile; returns once /admin/login/ answers."""
    proc = Process(
        name="web",
        args=[
            sys.executable,
            "-m",
            "gunicorn",
            "backoffice.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "4",
            "--timeout",
            "60",
        ],
        log_path=tmp_path / "web.log",
        extra_env=extra_env,
    ).start()
    return answering(proc, f"http://127.0.0.1:{port}/admin/login/")


def flower(tmp_path: Path, port: int, basic_auth: str, **extra_env) -> Process:
    """Flower as deploy/Procfile starts it (loopback, /ops/flower prefix, basic auth); returns once it answers."""
    proc = Process(
        name="flower",
        args=celery(
            "flower",
            "--address=127.0.0.1",
            f"--port={port}",
            "--url_prefix=ops/flower",
            "--read_only=True",
            "--persistent=False",
        ),
        log_path=tmp_path / "flower.log",
        extra_env={"FLOWER_BASIC_AUTH": basic_auth, **extra_env},  # from the environment, never argv
    ).start()
    return answering(proc, f"http://127.0.0.1:{port}/ops/flower/healthcheck")
