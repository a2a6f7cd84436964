"""Mixed load: points events keep flowing while long exports and a big expiry sweep run.

Two analysts' exports of BENCH_MIXED_EXPORT_ROWS rows each (the task results table, CSV) and an expiry sweep of
BENCH_MIXED_ORDERS overdue orders are queued; then points events are captured at BENCH_MIXED_RATE events/s for
BENCH_MIXED_SECONDS, as the middleware captures them (outbox row, then a kick). The lag of each event is from its
capture to its ledger entry. Two worker layouts, same data, same run:

- split (deploy/Procfile): a fast worker (-c 2) on default, points, orders and a long worker (-c 1, prefetch 1) on
  exports, reports;
- one worker (-c 2, prefetch 4) on every queue, as before the split.

Figures: mixed.points_lag_p99_s, mixed.points_lag_p50_s, mixed.one_worker_lag_p99_s, mixed.one_worker_lag_p50_s,
mixed.exports_done_s (split), mixed.events (per layout).
"""

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from bench.common import figure, setup

FIGURE_PREFIX = "mixed"
EXPORT_ROWS = int(os.environ.get("BENCH_MIXED_EXPORT_ROWS", 1_000_000))
ORDERS = int(os.environ.get("BENCH_MIXED_ORDERS", 100_000))
RATE = float(os.environ.get("BENCH_MIXED_RATE", 200))
SECONDS = float(os.environ.get("BENCH_MIXED_SECONDS", 30))
DRAIN_TIMEOUT_S = 600
BASE_DIR = Path(__file__).resolve().parent.parent
LAYOUTS = {
    "split": [
        ("fast", ["--queues", "default,points,orders", "--concurrency", "2"]),
        ("long", ["--queues", "exports,reports", "--concurrency", "1", "--prefetch-multiplier", "1"]),
    ],
    "one_worker": [("all", ["--queues", "default,points,orders,exports,reports", "--concurrency", "2"])],
}


def _start_worker(name: str, args: list[str], tmp: str) -> subprocess.Popen:
    log = open(Path(tmp) / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "backoffice", "worker", *args, "--loglevel", "WARNING",
         "--hostname", f"mixed-{name}-{uuid.uuid4().hex[:6]}@localhost", "--without-mingle", "--without-gossip"],
        cwd=BASE_DIR, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _results_rows(count: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM django_celery_results_taskresult")
        have = cursor.fetchone()[0]
        if have < count:
            cursor.execute(
                "INSERT INTO django_celery_results_taskresult (task_id, status, content_type, content_encoding, "
                "result, date_done, date_created, task_name, worker) SELECT 'mixed-' || g || '-' || %s, 'SUCCESS', "
                "'application/json', 'utf-8', '\"pong\"', now(), now(), 'backoffice.ping', 'bench@localhost' "
                "FROM generate_series(1, %s) AS g",
                [uuid.uuid4().hex[:8], count - have],
            )


def _overdue_orders(count: int, user) -> None:
    from django.utils import timezone

    from orders.models import Order

    past = timezone.now() - timedelta(minutes=5)
    run = uuid.uuid4().hex[:8]
    for start in range(0, count, 10_000):
        Order.objects.bulk_create(
            [
                Order(number=f"M{run}{n:07d}", user=user, subtotal=Decimal("1"), total=Decimal("1"), expires_at=past)
                for n in range(start, min(count, start + 10_000))
            ]
        )


def run_layout(layout: str) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from backoffice.celery import app
    from backoffice.exports import services as exports
    from orders.tasks import order_expire_overdue_task
    from points.capture import event_capture
    from points.models import Action, LedgerEntry, PendingEvent, Rule

    with app.connection_for_write() as conn:
        for queue in app.conf.task_queues:
            queue(conn.default_channel).purge()
    run = uuid.uuid4().hex[:8]
    analyst = get_user_model().objects.create_superuser(username=f"mixed-{run}", password=None)
    _overdue_orders(ORDERS, analyst)
    action = Action.objects.create(
        code=f"mixed-{run}", name="mixed", method="POST", path_pattern=rf"^/mixed/{run}/$", status="active"
    )
    Rule.objects.create(
        name=f"mixed {run}", action=action, points=1, kind="every", period="none", status="active",
        allow_repeat_business_id=True,
    )  # fmt: skip
    users = get_user_model().objects.bulk_create([get_user_model()(username=f"mixed-{run}-{n}") for n in range(200)])
    connection.close()

    lags = []
    with tempfile.TemporaryDirectory() as tmp:
        workers = [_start_worker(name, args, tmp) for name, args in LAYOUTS[layout]]
        try:
            while len(app.control.ping(timeout=0.5)) < len(workers):
                time.sleep(0.2)
            started = time.monotonic()
            jobs = [
                exports.export_job_create(user=analyst, target_key="results", query_string="", columns=["id", "result"])
                for _ in range(2)
            ]
            order_expire_overdue_task.apply_async()
            time.sleep(1)  # the long work has started on the workers before the first event

            event_ids = []
            interval = 1 / RATE
            next_at = time.monotonic()
            deadline = next_at + SECONDS
            while time.monotonic() < deadline:
                user = users[len(event_ids) % len(users)]
                event = event_capture(user_id=user.pk, action_id=action.pk, business_id=str(len(event_ids)))
                event_ids.append(event.event_id)
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))
            connection.close()

            drain_deadline = time.monotonic() + DRAIN_TIMEOUT_S
            while PendingEvent.objects.filter(action_id=action.pk).exists():
                if time.monotonic() > drain_deadline:
                    raise RuntimeError("points events did not drain")
                time.sleep(0.2)
            for occurred, applied in LedgerEntry.objects.filter(rule__action=action).values_list(
                "source__occurred_at", "created_at"
            ):
                lags.append((applied - occurred).total_seconds())
            exports_done = None
            from backoffice.exports.models import ExportJob

            while exports_done is None and time.monotonic() < drain_deadline:
                statuses = set(ExportJob.objects.filter(pk__in=[j.pk for j in jobs]).values_list("status", flat=True))
                if statuses <= {"done", "failed", "cancelled"}:
                    exports_done = time.monotonic() - started
                else:
                    time.sleep(0.5)
        finally:
            for worker in workers:
                _stop(worker)
    if len(lags) < len(event_ids):
        raise RuntimeError(f"{len(event_ids)} events captured, {len(lags)} ledger entries")
    lags.sort()
    return {
        "events": len(event_ids),
        "p50": statistics.median(lags),
        "p99": lags[min(len(lags) - 1, int(len(lags) * 0.99))],
        "exports_done_s": exports_done,
    }


def main() -> None:
    setup()
    _results_rows(EXPORT_ROWS)
    split = run_layout("split")
    one = run_layout("one_worker")
    figure("mixed.points_lag_p99_s", split["p99"], "s")
    figure("mixed.points_lag_p50_s", split["p50"], "s")
    figure("mixed.one_worker_lag_p99_s", one["p99"], "s")
    figure("mixed.one_worker_lag_p50_s", one["p50"], "s")
    figure("mixed.events", split["events"], "events")
    if split["exports_done_s"] is not None:
        figure("mixed.exports_done_s", split["exports_done_s"], "s")
    if one["exports_done_s"] is not None:
        figure("mixed.one_worker_exports_done_s", one["exports_done_s"], "s")


if __name__ == "__main__":
    main()
