"""Beat with 10,000 enabled schedules: how fast an edit is noticed, and how fast 10,000 due entries go out.

- beat.edit_noticed_s: a real `celery beat` process (PortalScheduler) holds 10,000 schedules, none due;
  one is saved as the admin saves it (due now); seconds from the save until its message is in the broker.
  Median of EDITS edits.
- beat.dispatch_per_s: all 10,000 overdue at once; PortalScheduler in this process, ticking as beat's loop
  does, publishing for real to Redis; 10,000 / seconds until the last is sent (heap build and run-time
  syncs included).
- beat.stock_dispatch_per_s: django-celery-beat's DatabaseScheduler on the same rows, ticked for STOCK_S
  seconds (as ANCHORS.md section 5 measures it): entries sent / seconds.
- beat.load_10k_s: cold start. 10,000 enabled schedules, one of them (the last row) overdue; seconds from
  constructing the scheduler in this process to that entry's send (load, lock, run times, heap, publish),
  with no record of earlier sends in Redis (a first start). Median of LOADS.
  beat.stock_load_10k_s: the same for django-celery-beat's DatabaseScheduler (construct, tick until sent).
- beat.takeover_s: two real `celery beat` processes on 10,000 schedules plus one every second; the holder
  is SIGKILLed; seconds until the standby's first message reaches the broker. Beside it beat.lock_ttl_s:
  the goal is takeover within the lock's TTL plus one second.
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
LOADS = 3
TAKEOVER_TTL_S = 15  # settings.BEAT_LOCK_TTL_SECONDS' default, as deployed
STOCK_S = 5.0
QUEUE = "default"  # backoffice.ping's queue: the Redis list its messages land in


def build(*, due: bool, due_last: bool = False) -> None:
    """SCHEDULES enabled interval schedules on backoffice.ping, all overdue or all just run (with
    due_last, all just run but the last row, which is two hours overdue)."""
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
    if due_last:
        PeriodicTask.objects.filter(name=f"bench {SCHEDULES - 1:05}").update(
            last_run_at=timezone.now() - timedelta(hours=2)
        )


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


def load_to_first_send(scheduler_class) -> float:
    """Seconds from constructing the scheduler to the send of the one overdue entry among SCHEDULES."""
    from django.conf import settings

    from backoffice.celery import app

    timings = []
    for _ in range(LOADS):
        build(due=False, due_last=True)
        client = redis_client()
        client.delete(QUEUE, settings.BEAT_LOCK_KEY, settings.BEAT_LOCK_KEY + ":sent")
        started, cpu_started = time.perf_counter(), time.process_time()
        scheduler = counting(scheduler_class)(app=app)
        while scheduler.sent == 0 and time.perf_counter() - started < 120:
            delay = scheduler.tick()
            if delay and scheduler.sent == 0:
                time.sleep(min(delay, 0.01))
        timings.append(time.perf_counter() - started)
        cpu = time.process_time() - cpu_started  # on a busy machine, wall time is mostly waiting for a core
        scheduler._dirty.clear()  # the write-back of one row is not part of the figure
        if hasattr(scheduler, "release_lock"):
            scheduler.release_lock()
        client.delete(QUEUE)
        print(
            f"{scheduler_class.__name__}: first send {timings[-1]:.2f} s after construction ({cpu:.2f} s of CPU)",
            flush=True,
        )
    return statistics.median(timings)


def start_beat(label: str, **env) -> subprocess.Popen:
    return subprocess.Popen(
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
            f"/tmp/bench-beat-{os.getpid()}-{label}.db",
        ],
        env={**os.environ, "LOG_LEVEL": "WARNING", **env},
        start_new_session=True,
    )


def stop_beat(beat: subprocess.Popen) -> None:
    try:
        os.killpg(beat.pid, signal.SIGTERM)
        beat.wait(20)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(beat.pid, signal.SIGKILL)
        beat.wait(5)


def takeover() -> float:
    """Seconds from SIGKILL of the holder until the standby's first send reaches the broker."""
    from django.conf import settings
    from django.utils import timezone
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    build(due=False)
    PeriodicTask.objects.create(
        name="bench every second",
        task="backoffice.ping",
        interval=IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)[0],
        last_run_at=timezone.now(),
    )
    client = redis_client()
    client.delete(QUEUE, settings.BEAT_LOCK_KEY, settings.BEAT_LOCK_KEY + ":sent")
    env = {"BEAT_LOCK_TTL_SECONDS": str(TAKEOVER_TTL_S)}
    holder = start_beat("holder", **env)
    standby = None
    try:
        deadline = time.monotonic() + 60
        while client.llen(QUEUE) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        standby = start_beat("standby", **env)
        time.sleep(8)  # the standby starts and loads its 10,000 entries, well inside the TTL
        os.killpg(holder.pid, signal.SIGKILL)
        killed = time.perf_counter()
        holder.wait(5)
        sent_before = client.llen(QUEUE)
        while client.llen(QUEUE) == sent_before and time.perf_counter() - killed < 120:
            time.sleep(0.01)
        seconds = time.perf_counter() - killed
        print(f"takeover: standby's first send {seconds:.2f} s after the holder was killed", flush=True)
        return seconds
    finally:
        stop_beat(holder)
        if standby is not None:
            stop_beat(standby)
        client.delete(QUEUE)


def edit_noticed() -> float:
    from django.conf import settings
    from django.utils import timezone
    from django_celery_beat.models import PeriodicTask

    build(due=False)
    client = redis_client()
    client.delete(QUEUE, settings.BEAT_LOCK_KEY)
    beat = start_beat("edits")
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
        stop_beat(beat)
        client.delete(QUEUE)


def main() -> None:
    setup()
    from django_celery_beat.schedulers import DatabaseScheduler

    from backoffice.schedules.scheduler import PortalScheduler, configure_beat_process

    configure_beat_process()
    figure("beat.load_10k_s", load_to_first_send(PortalScheduler), "s")
    figure("beat.stock_load_10k_s", load_to_first_send(DatabaseScheduler), "s")
    figure("beat.takeover_s", takeover(), "s")
    figure("beat.lock_ttl_s", TAKEOVER_TTL_S, "s")
    figure("beat.edit_noticed_s", edit_noticed(), "s")
    figure("beat.dispatch_per_s", dispatch_rate(), "entries/s")
    figure("beat.stock_dispatch_per_s", stock_dispatch_rate(), "entries/s")
    from django_celery_beat.models import PeriodicTask

    PeriodicTask.objects.all()._raw_delete(PeriodicTask.objects.db)


if __name__ == "__main__":
    main()
