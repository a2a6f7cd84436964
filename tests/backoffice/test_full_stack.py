"""The whole portal as `make run` starts it: honcho runs deploy/Procfile (web, worker, beat, Flower and the
embedded redis-server) against the test database, and every part is exercised over its real interface."""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_results.models import TaskResult

from backoffice.embedded_redis import free_port
from tests.processes import process_env, wait_for

pytestmark = pytest.mark.slow

PROCESSES = ["web", "worker", "beat", "flower", "redis"]
PASSWORD = "stack-test-password"  # noqa: S105 - a throwaway user in the test database


def descendants(pid: int) -> set[int]:
    """Every live process below pid (from /proc), so a test can prove none outlives the supervisor."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def stack(transactional_db, tmp_path):
    web_port, flower_port, redis_port = free_port(), free_port(), free_port()
    env = process_env(
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        EMBEDDED_REDIS_PORT=str(redis_port),
        FLOWER_PORT=str(flower_port),
        FLOWER_BASIC_AUTH="portal:flower-test-secret",
        WEB_WORKERS="1",
        WORKER_CONCURRENCY="2",
        CELERY_BROKER_URL="",  # as make run: the embedded Redis is the broker, whatever this run uses
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    )
    log = (tmp_path / "honcho.log").open("wb")
    honcho = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "honcho",
            "start",
            "--procfile",
            "deploy/Procfile",
            "--app-root",
            ".",
            "--env",
            "/dev/null",
            "--port",
            str(web_port),
            *PROCESSES,
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    honcho.base_url = f"http://127.0.0.1:{web_port}"
    honcho.flower_url = f"http://127.0.0.1:{flower_port}/ops/flower/"
    honcho.broker_url = env["REDIS_URL"]
    honcho.log = lambda: (tmp_path / "honcho.log").read_text(errors="replace")
    yield honcho
    # Whatever the test did, nothing may outlive it: find the children while honcho is still their parent
    # (after its death they belong to init), then stop honcho and kill any child that lingers.
    children = descendants(honcho.pid)
    if honcho.poll() is None:
        honcho.terminate()
        try:
            honcho.wait(15)
        except subprocess.TimeoutExpired:
            honcho.kill()
    for pid in children:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    log.close()


def admin_session(base_url: str, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=10, follow_redirects=False)
    client.get("/admin/login/")
    response = client.post(
        "/admin/login/?next=/admin/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": client.cookies["csrftoken"]},
        headers={"Referer": f"{base_url}/admin/login/"},
    )
    assert response.status_code == 302, response.text[:2000]
    assert response.headers["location"] == "/admin/"
    return client


def test_the_portal_runs_as_make_run_starts_it_and_stops_cleanly(stack):
    get_user_model().objects.create_superuser("stackadmin", "stackadmin@localhost", PASSWORD)
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    beat_job = PeriodicTask.objects.create(
        name="stack heartbeat", task="backoffice.ping", interval=every_second, args=json.dumps(["from beat"])
    )
    clock = PeriodicTask.objects.create(  # stays enabled: its runs tell the test that time has passed in beat
        name="stack clock", task="backoffice.ping", interval=every_second, args=json.dumps(["clock"])
    )

    def healthz():
        try:
            response = httpx.get(f"{stack.base_url}/healthz", timeout=3)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    try:
        health = wait_for(healthz, timeout=90, interval=0.5, message="/healthz to turn green")
    except AssertionError:
        raise AssertionError(stack.log()[-6000:]) from None
    assert health == {"status": "ok", "database": "ok", "broker": "ok", "workers": 1, "beat": "ok"}

    # Logged in to the admin over HTTP, a task sent through the embedded broker runs on the real worker.
    admin = admin_session(stack.base_url, "stackadmin", PASSWORD)
    from backoffice.celery import app
    from backoffice.tasks import ping_task

    with app.connection_for_write(stack.broker_url) as connection:
        sent = ping_task.apply_async(args=["over the stack"], connection=connection)
    stored = wait_for(
        lambda: TaskResult.objects.filter(task_id=sent.id, status="SUCCESS").first(),
        timeout=30,
        message="the task's stored result",
    )
    assert (stored.task_name, stored.task_args, stored.result) == (
        "backoffice.ping",
        "\"['over the stack']\"",
        '"over the stack"',
    )
    results_page = admin.get("/admin/django_celery_results/taskresult/")
    assert results_page.status_code == 200
    assert sent.id in results_page.text

    # Beat dispatches the schedule stored in the database...
    wait_for(
        lambda: TaskResult.objects.filter(periodic_task_name=beat_job.name, status="SUCCESS").count() >= 2,
        timeout=30,
        message="beat's dispatches to run",
    )
    # ...and a change made in the admin (bulk disable) takes effect without restarting beat.
    changelist = admin.get("/admin/django_celery_beat/periodictask/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', changelist.text).group(1)
    response = admin.post(
        "/admin/django_celery_beat/periodictask/",
        data={"action": "disable_selected", "_selected_action": [beat_job.pk], "csrfmiddlewaretoken": token},
        headers={"Referer": f"{stack.base_url}/admin/django_celery_beat/periodictask/"},
    )
    assert response.status_code == 302
    beat_job.refresh_from_db()
    assert beat_job.enabled is False

    def clock_runs(more: int) -> None:
        """Wait until the clock schedule has run `more` more times: beat and the worker are the clock."""
        start = TaskResult.objects.filter(periodic_task_name=clock.name).count()
        wait_for(
            lambda: TaskResult.objects.filter(periodic_task_name=clock.name).count() >= start + more,
            timeout=30,
            message=f"{more} more runs of the clock schedule",
        )

    clock_runs(8)  # the change poll and one reload, with room to spare; in-flight runs are stored meanwhile
    final = TaskResult.objects.filter(periodic_task_name=beat_job.name).count()
    clock_runs(3)
    assert TaskResult.objects.filter(periodic_task_name=beat_job.name).count() == final

    # Flower listens on loopback and never answers without the portal's credentials.
    assert httpx.get(stack.flower_url, timeout=5).status_code == 401
    assert httpx.get(stack.flower_url, auth=("portal", "flower-test-secret"), timeout=5).status_code == 200

    # SIGTERM to the supervisor stops every child: no orphan survives.
    children = descendants(stack.pid)
    assert len(children) >= len(PROCESSES)
    stack.send_signal(signal.SIGTERM)
    stack.wait(30)
    wait_for(
        lambda: not any(alive(pid) for pid in children),
        timeout=20,
        message=f"every child to exit (left: {[pid for pid in children if alive(pid)]})",
    )
