"""One evaluation of every default alert rule with 1,000,000 task results and 1,000,000 ledger entries
(goal: <= 200 ms).

Builds the rows with set-based INSERT ... SELECT generate_series (24 h of task results, 1 in 50 a failure;
30 days of ledger), installs the default rules, starts a real worker (on a queue nothing is sent to) so the
"no worker online" rule pays a real ping, then times evaluations after a warm-up one. Beside it, the cost of one
plain COUNT(*) over the task results: what any rule that scanned the big table would pay at least.
"""

import os
import statistics
import subprocess
import sys
import uuid

from bench.common import Timer, figure, setup

FIGURE_PREFIX = "alerts"
LEDGER_ROWS = int(os.environ.get("BENCH_ALERTS_LEDGER_ROWS", 1_000_000))
RESULT_ROWS = int(os.environ.get("BENCH_ALERTS_RESULT_ROWS", 1_000_000))
ACCOUNTS = 1_000
EVALUATIONS = 20
PREFIX = f"bench-alerts-{uuid.uuid4().hex[:6]}-"  # per run: the ledger refuses deletes, so rows are never reused
WORKER_QUEUE = "bench-alerts-idle"


def _build(connection, user_model) -> None:
    from points.models import Account, LedgerEntry

    users = user_model.objects.bulk_create(
        [user_model(username=f"{PREFIX}{n}", password="!") for n in range(ACCOUNTS)]  # noqa: S106 - unusable
    )
    Account.objects.bulk_create([Account(user=user, balance=0) for user in users])
    first_account = Account.objects.filter(user__username=f"{PREFIX}0").values_list("id", flat=True).get()
    ledger = LedgerEntry._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {ledger} (serial_number, account_id, amount, balance_before, balance_after, kind,
                                  order_number, idempotency_key, reason, language, country, location, created_at)
            SELECT '{PREFIX}' || g, %s + (g %% {ACCOUNTS}), 10, 100, 110, 'award',
                   '', '{PREFIX}' || g, '', '', '', '', now() - (g * interval '30 days' / %s)
            FROM generate_series(1, %s) AS g
            """,
            [first_account, LEDGER_ROWS, LEDGER_ROWS],
        )
        cursor.execute(
            f"""
            INSERT INTO django_celery_results_taskresult
                (task_id, task_name, task_args, task_kwargs, status, worker, content_type, content_encoding,
                 result, date_created, date_started, date_done, traceback, meta, periodic_task_name)
            SELECT '{PREFIX}' || g,
                   (ARRAY['points.events_process_batch', 'orders.expire', 'orders.fulfil',
                          'backoffice.ping'])[1 + g %% 4],
                   '[]', '{{}}', CASE WHEN g %% 50 = 0 THEN 'FAILURE' ELSE 'SUCCESS' END, 'worker@bench',
                   'application/json', 'utf-8', 'null', d, d, d, NULL, '{{}}', NULL
            FROM (SELECT g, now() - (g * interval '24 hours' / %s) AS d FROM generate_series(1, %s) AS g) AS s
            """,
            [RESULT_ROWS, RESULT_ROWS],
        )
        cursor.execute(f"ANALYZE {ledger}")
        cursor.execute("ANALYZE django_celery_results_taskresult")


def _start_worker():
    """A real worker that answers pings; it consumes a queue nothing is sent to, so it does no other work."""
    from backoffice.celery import app

    name = f"{PREFIX}worker@localhost"
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "backoffice",
            "worker",
            "--pool",
            "solo",
            "--queues",
            WORKER_QUEUE,
            "--hostname",
            name,
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "WARNING",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    for _ in range(60):
        if app.control.ping(destination=[name], timeout=0.5):
            return proc
    proc.terminate()
    raise RuntimeError("the bench worker did not answer a ping within 30 s")


def _cleanup(connection) -> None:
    """Task results and alert rows go; the ledger is append-only (a trigger refuses DELETE), so its rows stay
    until `make bench` drops the benchmark database."""
    from backoffice.alerts.models import AlertRule

    AlertRule.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_celery_results_taskresult WHERE task_id LIKE %s", [f"{PREFIX}%"])


def main() -> None:
    setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from backoffice.alerts.defaults import DEFAULT_RULES
    from backoffice.alerts.models import AlertRule
    from backoffice.alerts.selectors import Figures
    from backoffice.alerts.services import alert_rules_install_defaults, alerts_evaluate

    worker = None
    try:
        with Timer() as build:
            _build(connection, get_user_model())
        print(f"built {LEDGER_ROWS} ledger entries and {RESULT_ROWS} task results in {build.seconds:.0f} s")
        alert_rules_install_defaults()
        worker = _start_worker()
        first = alerts_evaluate()  # warm-up: connections, and the rules that fire here (no beat) fire once
        print(f"warm-up evaluation of {len(DEFAULT_RULES)} rules: {vars(first)}")
        samples = []
        for _ in range(EVALUATIONS):
            with Timer() as timer:
                outcome = alerts_evaluate()
            assert outcome.errors == 0, outcome
            samples.append(timer.seconds * 1000)
        figures = Figures(now=timezone.now())
        for rule in AlertRule.objects.order_by("pk"):
            with Timer() as one:
                figures.measure(rule)
            print(f"  {rule.kind:<20} {one.seconds * 1000:7.1f} ms")
        figures.close()
        with Timer() as scan, connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM django_celery_results_taskresult")
        figure("alerts.evaluate_ms", statistics.median(samples), "ms")
        figure("alerts.evaluate_max_ms", max(samples), "ms")
        figure("alerts.taskresult_count_scan_ms", scan.seconds * 1000, "ms")
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(10)
        _cleanup(connection)


if __name__ == "__main__":
    main()
