"""Dashboard server time with 1,000,000 ledger entries and 1,000,000 task results (goal: <= 100 ms).

Builds the data with set-based INSERT ... SELECT generate_series (30 days of ledger, 24 h of results), runs the
refresh task's work once, then times GET /admin/ as a superuser through the whole Django stack (middleware,
session, auth, the cached panels, template) against the same page with the stock admin index, and against
computing the panels inside the request (what the page would cost without the cache).
"""

import os
import statistics
import uuid

from bench.common import Timer, figure, setup

FIGURE_PREFIX = "dashboard"
LEDGER_ROWS = int(os.environ.get("BENCH_DASHBOARD_LEDGER_ROWS", 1_000_000))
RESULT_ROWS = int(os.environ.get("BENCH_DASHBOARD_RESULT_ROWS", 1_000_000))
ACCOUNTS = 1_000
REQUESTS = 40  # timed page loads per variant, spread over the rounds
ROUNDS = 4
PREFIX = f"bench-dash-{uuid.uuid4().hex[:6]}-"  # per run: the ledger refuses deletes, so rows are never reused


def _build(connection, user_model) -> None:
    from points.models import Account, LedgerEntry

    users = user_model.objects.bulk_create(
        [user_model(username=f"{PREFIX}{n}", password="!") for n in range(ACCOUNTS)]  # noqa: S106 - unusable
    )
    Account.objects.bulk_create([Account(user=user, balance=0) for user in users])
    first_account = Account.objects.filter(user__username=f"{PREFIX}0").values_list("id", flat=True).get()
    ledger = LedgerEntry._meta.db_table
    with connection.cursor() as cursor:
        # 9 in 10 entries award 10 points, 1 in 10 redeems 5; spread evenly over the last 30 days.
        cursor.execute(
            f"""
            INSERT INTO {ledger} (serial_number, account_id, amount, balance_before, balance_after, kind,
                                  order_number, idempotency_key, reason, language, country, location, created_at)
            SELECT '{PREFIX}' || g, %s + (g %% {ACCOUNTS}),
                   CASE WHEN g %% 10 = 0 THEN -5 ELSE 10 END,
                   100, CASE WHEN g %% 10 = 0 THEN 95 ELSE 110 END,
                   CASE WHEN g %% 10 = 0 THEN 'redeem' ELSE 'award' END,
                   '', '{PREFIX}' || g, '', '', '', '',
                   now() - (g * interval '30 days' / %s)
            FROM generate_series(1, %s) AS g
            """,
            [first_account, LEDGER_ROWS, LEDGER_ROWS],
        )
        # Task results over the last 24 h: four task names, 1 in 50 a failure, run times up to ~2 s.
        cursor.execute(
            f"""
            INSERT INTO django_celery_results_taskresult
                (task_id, task_name, task_args, task_kwargs, status, worker, content_type, content_encoding,
                 result, date_created, date_started, date_done, traceback, meta, periodic_task_name)
            SELECT '{PREFIX}' || g,
                   (ARRAY['points.events_process_batch', 'orders.expire', 'orders.fulfil',
                          'backoffice.ping'])[1 + g %% 4],
                   '[]', '{{}}', CASE WHEN g %% 50 = 0 THEN 'FAILURE' ELSE 'SUCCESS' END, 'worker@bench',
                   'application/json', 'utf-8', 'null',
                   d - (g %% 2000) * interval '1 millisecond', d - (g %% 2000) * interval '1 millisecond', d,
                   NULL, '{{}}', NULL
            FROM (SELECT g, now() - (g * interval '24 hours' / %s) AS d FROM generate_series(1, %s) AS g) AS s
            """,
            [RESULT_ROWS, RESULT_ROWS],
        )
        cursor.execute(f"ANALYZE {ledger}")
        cursor.execute("ANALYZE django_celery_results_taskresult")


def _cleanup(connection) -> None:
    """Remove the task results. The ledger is append-only (a trigger refuses DELETE), so its rows, their
    accounts and users stay until `make bench` drops the benchmark database."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_celery_results_taskresult WHERE task_id LIKE %s", [f"{PREFIX}%"])


def _time_request(client, path: str) -> float:
    with Timer() as timer:
        response = client.get(path)
    assert response.status_code == 200
    return timer.seconds * 1000


def main() -> None:
    setup()
    from django.contrib import admin
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from backoffice.ops import dashboard, selectors
    from backoffice.ops.services import dashboard_refresh

    setup_test_environment()  # the test client's host is allowed; nothing else changes
    user_model = get_user_model()
    try:
        with Timer() as build:
            _build(connection, user_model)
        print(f"built {LEDGER_ROWS} ledger entries and {RESULT_ROWS} task results in {build.seconds:.0f} s")
        selectors.celery_app.control.ping = lambda **kwargs: []  # no worker in the bench: skip the broadcast wait
        with Timer() as refresh:
            outcome = dashboard_refresh()
        assert set(outcome.values()) == {"ok"}, outcome

        root, _ = user_model.objects.get_or_create(
            username=f"{PREFIX}root", defaults={"is_staff": True, "is_superuser": True}
        )
        client = Client()
        client.force_login(root)
        cached_panels = dashboard.dashboard_panels

        def uncached_panels(user, **kwargs):  # the panels computed inside the request: no cache
            dashboard_refresh(panels=["tasks", "points", "orders"])
            return cached_panels(user, **kwargs)

        # (name, panels function, index template, requests per round); rounds interleave the variants.
        variants = [
            ("ours", cached_panels, admin.site.index_template, REQUESTS // ROUNDS),
            ("stock", lambda user, **kwargs: [], None, REQUESTS // ROUNDS),  # Django's own admin index
            ("uncached", uncached_panels, admin.site.index_template, 1),
        ]
        samples = {name: [] for name, *_ in variants}
        template = admin.site.index_template
        try:
            for round_number in range(ROUNDS + 1):
                for name, panels, index_template, count in variants:
                    dashboard.dashboard_panels, admin.site.index_template = panels, index_template
                    timings = [_time_request(client, "/admin/") for _ in range(count)]
                    if round_number:  # round 0 warms templates and connections up
                        samples[name].extend(timings)
        finally:
            dashboard.dashboard_panels, admin.site.index_template = cached_panels, template

        figure("dashboard.ms", statistics.median(samples["ours"]), "ms")
        figure("dashboard.stock_admin_index_ms", statistics.median(samples["stock"]), "ms")
        figure("dashboard.uncached_ms", statistics.median(samples["uncached"]), "ms")
        figure("dashboard.refresh_s", refresh.seconds, "s")
    finally:
        _cleanup(connection)


if __name__ == "__main__":
    main()
