"""Broker: the same work on Redis and on RabbitMQ (quorum queues, publisher confirms), in the same run.

For each broker, in a child process configured with that CELERY_BROKER_URL (Redis stays the cache either way):
- points drain: BENCH_BROKER_EVENTS captured events in the outbox, applied by a prefork -c 2 worker on the fast
  queues, from the first batch task published to the empty outbox (events/s). Batches of 500 events per task, so
  this mostly measures the database; the broker's share is the batch messages and their acks.
- beat dispatch: what beat does per due entry, a publish by queue name with no declare (PortalEntry), timed over
  BENCH_BROKER_SENDS sends with no worker running (sends/s; RabbitMQ waits for each publisher confirm).
- no-op drain: those sends consumed by a prefork -c 2 worker, first to last (tasks/s): the broker's own cost.

RabbitMQ runs on its own vhost (BENCH_AMQP_URL, default amqp://guest:guest@127.0.0.1:5672/backoffice_bench,
created with rabbitmqctl when missing and deleted afterwards); it is skipped with a note when unreachable.
Figures: broker.redis_points_drain_per_s, broker.rabbitmq_points_drain_per_s, broker.redis_beat_dispatch_per_s,
broker.rabbitmq_beat_dispatch_per_s, broker.redis_noop_drain_per_s, broker.rabbitmq_noop_drain_per_s,
broker.rabbitmq_vs_redis_dispatch.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from bench.common import figure

FIGURE_PREFIX = "broker"
EVENTS = int(os.environ.get("BENCH_BROKER_EVENTS", 20_000))
SENDS = int(os.environ.get("BENCH_BROKER_SENDS", 5_000))
AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/backoffice_bench")
BASE_DIR = Path(__file__).resolve().parent.parent
STALL_SECONDS = 30
USERS = 200


def _worker(env: dict, tmp: str, name: str) -> subprocess.Popen:
    log = open(Path(tmp) / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "backoffice", "worker", "--queues", "default,points,orders",
         "--concurrency", "2", "--loglevel", "WARNING", "--hostname", f"{name}-{uuid.uuid4().hex[:6]}@localhost",
         "--without-mingle", "--without-gossip"],
        cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _wait_progress(count, target: int) -> float:
    """Wait until count() reaches target; the time of the last change (fails on a stall)."""
    last, last_change = count(), time.perf_counter()
    while last < target:
        time.sleep(0.05)
        now = count()
        if now != last:
            last, last_change = now, time.perf_counter()
        elif time.perf_counter() - last_change > STALL_SECONDS:
            raise RuntimeError(f"stalled at {last} of {target}")
    return last_change


def run_one(label: str) -> None:
    """In a child process whose CELERY_BROKER_URL is the broker under test."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backoffice.settings")
    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from backoffice.celery import app
    from points.models import Action, PendingEvent
    from points.tasks import events_process_batch_task

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with app.connection_for_write() as conn:  # start empty: queues declared as workers declare them, then purged
        for queue in app.conf.task_queues:
            bound = queue(conn.default_channel)
            bound.declare()
            bound.purge()

    # Points drain: events already captured, then batch tasks published as the relay does.
    run = uuid.uuid4().hex[:8]
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"bench-broker-{run}-{n}") for n in range(USERS)]
    )
    action = Action.objects.create(
        code=f"bench-{run}", name="bench", method="POST", path_pattern=r"^/bench/broker/$", status="active"
    )
    now = timezone.now()
    PendingEvent.objects.bulk_create(
        [
            PendingEvent(event_id=uuid.uuid4(), user_id=users[n % USERS].pk, action_id=action.pk, occurred_at=now)
            for n in range(EVENTS)
        ],
        batch_size=5000,
    )
    connection.close()
    with tempfile.TemporaryDirectory() as tmp:
        worker = _worker(env, tmp, f"{label}-points")
        try:
            app.control.ping(timeout=1)  # warm the connection; the worker needs a moment anyway
            while not app.control.ping(timeout=0.5):
                time.sleep(0.2)
            started = time.perf_counter()
            events_process_batch_task.apply_async()
            events_process_batch_task.apply_async()  # two pool children, two batch chains
            done = _wait_progress(lambda: EVENTS - PendingEvent.objects.count(), EVENTS)
            figure(f"broker.{label}_points_drain_per_s", EVENTS / (done - started), "events/s")
        finally:
            _stop(worker)

        # Beat dispatch: publish by queue name without a declare, as PortalEntry does; no worker running.
        from backoffice.tasks import ping_task

        marker = f"bench-{uuid.uuid4().hex}"
        with app.producer_or_acquire() as producer:
            started = time.perf_counter()
            for _ in range(SENDS):
                ping_task.apply_async((marker,), queue="default", declare=[], producer=producer, ignore_result=True)
            sent = time.perf_counter() - started
        figure(f"broker.{label}_beat_dispatch_per_s", SENDS / sent, "sends/s")

        # No-op drain of those sends.
        def consumed() -> int:
            with app.connection_for_write() as conn:
                try:
                    waiting = app.amqp.queues["default"](conn.default_channel).queue_declare(passive=True)[1]
                except conn.channel_errors:  # Redis: an emptied queue's list no longer exists
                    waiting = 0
            return SENDS - waiting

        worker = _worker(env, tmp, f"{label}-noop")
        try:
            first = _wait_progress(lambda: min(consumed(), 1), 1)
            done = _wait_progress(consumed, SENDS)
            figure(f"broker.{label}_noop_drain_per_s", SENDS / max(done - first, 1e-3), "tasks/s")
        finally:
            _stop(worker)
    print(f"dispatch-per-s {label} {SENDS / sent}", flush=True)


def _vhost(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "/"


def _rabbitmqctl(*args: str) -> bool:
    ctl = shutil.which("rabbitmqctl") or shutil.which("rabbitmqctl", path="/usr/sbin:/sbin")
    return bool(ctl) and subprocess.run([ctl, *args], capture_output=True, check=False).returncode == 0


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        run_one(sys.argv[2])
        return
    runs = [("redis", os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"))]
    vhost = _vhost(AMQP_URL)
    created = vhost != "/" and _rabbitmqctl("add_vhost", vhost)
    if created:
        _rabbitmqctl("set_permissions", "-p", vhost, urlsplit(AMQP_URL).username or "guest", ".*", ".*", ".*")
    runs.append(("rabbitmq", AMQP_URL))
    dispatch = {}
    try:
        for label, url in runs:
            run = subprocess.run(
                [sys.executable, "-m", "bench.broker", "--one", label],
                cwd=BASE_DIR,
                env={**os.environ, "CELERY_BROKER_URL": url},
                capture_output=True,
                text=True,
                check=False,
            )
            for line in run.stdout.splitlines():
                if line.startswith("figure:"):
                    print(line, flush=True)
                elif line.startswith("dispatch-per-s"):
                    dispatch[label] = float(line.split()[2])
            if run.returncode != 0:
                print(f"broker: {label} run failed (skipped): {run.stderr.strip().splitlines()[-1:]}", flush=True)
    finally:
        if created:
            _rabbitmqctl("delete_vhost", vhost)
    if len(dispatch) == 2:
        figure("broker.rabbitmq_vs_redis_dispatch", dispatch["rabbitmq"] / dispatch["redis"], "x")


if __name__ == "__main__":
    main()
