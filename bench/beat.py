"""Beat with 10,000 enabled schedules: how fast an edit is noticed, and how fast 10,000 due entries go out.

- beat.edit_noticed_s: a real `celery beat` process (PortalScheduler) holds 10,000 schedules, none due;
  one is saved as the admin saves it (due now); seconds from the save until its message is in the broker.
  Median of EDITS edits.
- beat.dispatch_per_s: all 10,000 overdue at once; PortalScheduler in this process, ticking as beat's loop
  does, publishing for real to Redis; 10,000 / seconds until the last is sent (heap build and run-time
  syncs included).
- beat.stock_dispatch_per_s: django-celery-beat's DatabaseScheduler on the same rows, ticked for STOCK_S
  seconds (as ANCHORS.md section 5 measures it): entries sent / seconds.
"""

import os
import signal
import statistics
import subprocess
import sys
import time
from datetime import timedelta

from bench.common import figure, setup

FIGURE_PREFIX = "beat"
SCHEDULES = int(os.environ.get("BENCH_SCHEDULES", 10_000))
EDITS = 3
STOCK_S = 5.0
QUEUE = "default"  # backoffice.ping's queue: the Redis list its messages land in


def build(*, due: bool) -> None:
    """SCHEDULES enabled interval schedules on backoffice.ping, all overdue or all just run."""
    from django.db import transaction
    from django.utils import timezone
    from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

    PeriodicTask.objects.all()._raw_delete(PeriodicTask.objects.db)  # no per-row signal: one statement
    every, _ = IntervalSchedule.objects.get_or_create(every=60 if due else 3600, period=IntervalSchedule.SECONDS)
    last_run = timezone.now() - timedelta(seconds=120 if due else 0)
    with transaction.atomic():
        PeriodicTask.objects.bulk_create(
            (
                PeriodicTask(name=f"bench {n:05}", task="backoffice.ping", interval=every, last_run_at=last_run)
                for n in range(SCHEDULES)
            ),
            batch_size=2_000,
        )
        PeriodicTasks.update_changed()


def redis_client():
    import redis
    from django.conf import settings

    return redis.Redis.from_url(settings.REDIS_URL)


def counting(scheduler_class):
    class Counting(scheduler_class):
        sent = 0

        def apply_entry(self, entry, producer=None):
            super().apply_entry(entry, producer=producer)
            self.sent += 1

    return Counting


def dispatch_rate() -> float:
    from django.conf import settings

    from backoffice.celery import app
    from backoffice.schedules.scheduler import PortalScheduler, configure_beat_process

    configure_beat_process()  # what the beat process does at start (beat_init)
    build(due=True)
    client = redis_client()
    client.delete(QUEUE, settings.BEAT_LOCK_KEY)
    scheduler = counting(PortalScheduler)(app=app)
    started = time.perf_counter()
    while scheduler.sent < SCHEDULES:
        delay = scheduler.tick()
        if delay and scheduler.sent < SCHEDULES:
            time.sleep(min(delay, 0.05))
        if time.perf_counter() - started > 120:
            break
    elapsed = time.perf_counter() - started
    queued = client.llen(QUEUE)
    scheduler.close()
    client.delete(QUEUE)
    print(f"portal scheduler: {scheduler.sent} sent in {elapsed:.2f} s; {queued} messages in Redis", flush=True)
    return scheduler.sent / elapsed


def stock_dispatch_rate() -> float:
    from django.conf import settings
    from django_celery_beat.schedulers import DatabaseScheduler

    from backoffice.celery import app

    app.conf.task_send_sent_event = settings.CELERY_TASK_SEND_SENT_EVENT  # the project's, as stock beat runs
    build(due=True)
    client = redis_client()
    client.delete(QUEUE)
    scheduler = counting(DatabaseScheduler)(app=app)
    started = time.perf_counter()
    while time.perf_counter() - started < STOCK_S:
        scheduler.tick()
    elapsed = time.perf_counter() - started
    scheduler._dirty.clear()  # its per-row sync of thousands of rows is not part of the figure
    client.delete(QUEUE)
    print(f"stock scheduler: {scheduler.sent} sent in {elapsed:.2f} s", flush=True)
    return scheduler.sent / elapsed


def edit_noticed() -> float:
    from django.conf import settings
    from django.utils import timezone
    from django_celery_beat.models import PeriodicTask

    build(due=False)
    client = redis_client()
    client.delete(QUEUE, settings.BEAT_LOCK_KEY)
    beat = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "backoffice",
            "beat",
            "--loglevel",
            "WARNING",
            "--pidfile=",
            "--schedule",
            f"/tmp/bench-beat-{os.getpid()}.db",
        ],
        env={**os.environ, "LOG_LEVEL": "WARNING"},
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while client.get(settings.BEAT_LOCK_KEY) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        timings = []
        for n in range(-1, EDITS):  # edit -1 warms up: it is noticed only once the first load and heap are done
            client.delete(QUEUE)
            task = PeriodicTask.objects.get(name=f"bench {n + 1:05}")
            task.last_run_at = timezone.now() - timedelta(hours=2)  # due now, as an interval shortened in the admin
            task.save()
            saved = time.perf_counter()
            while client.llen(QUEUE) == 0 and time.perf_counter() - saved < 60:
                time.sleep(0.01)
            noticed = time.perf_counter() - saved
            print(f"edit {n}: noticed after {noticed:.2f} s{' (warm-up)' if n < 0 else ''}", flush=True)
            if n >= 0:
                timings.append(noticed)
            time.sleep(1)
        return statistics.median(timings)
    finally:
        os.killpg(beat.pid, signal.SIGTERM)
        try:
            beat.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(beat.pid, signal.SIGKILL)
        client.delete(QUEUE)


def main() -> None:
    setup()
    figure("beat.edit_noticed_s", edit_noticed(), "s")
    figure("beat.dispatch_per_s", dispatch_rate(), "entries/s")
    figure("beat.stock_dispatch_per_s", stock_dispatch_rate(), "entries/s")
    from django_celery_beat.models import PeriodicTask

    PeriodicTask.objects.all()._raw_delete(PeriodicTask.objects.db)


if __name__ == "__main__":
    main()
