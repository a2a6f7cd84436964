"""Task results changelist on 1,000,000 TaskResult rows: the portal's admin against django-celery-results'
stock TaskResultAdmin, in the same process and database, requests interleaved.

Figures (server time per GET of the first page, unfiltered, superuser, django.test.Client; median over
BLOCKS block medians of REQUESTS requests each): results.changelist_ms, results.stock_changelist_ms; also
results.changelist_filtered_ms (status=FAILURE, the portal's admin; the stock one is not fast enough to
repeat that many times).
"""

import os
import statistics
import time

from bench.common import figure, setup

FIGURE_PREFIX = "results"
ROWS = int(os.environ.get("BENCH_RESULTS", 1_000_000))
BLOCKS = 3
REQUESTS = 10
TASKS = ["backoffice.ping", "results.cleanup", "points.relay", "orders.sweep"]


def __getattr__(name):
    """This module is also the URL conf of the measurement (built lazily, after django.setup())."""
    if name != "urlpatterns":
        raise AttributeError(name)
    from django.contrib import admin
    from django.contrib.admin import AdminSite
    from django.urls import include, path
    from django_celery_results.admin import TaskResultAdmin as StockTaskResultAdmin
    from django_celery_results.models import TaskResult

    stock = AdminSite(name="stockadmin")
    stock.register(TaskResult, StockTaskResultAdmin)
    return [path("stock/", stock.urls), path("admin/", admin.site.urls), path("", include("backoffice.urls"))]


def build() -> None:
    """ROWS results over the last 30 days: 2% failures, a third from schedules, four task names."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_celery_results_taskresult")
        cursor.execute(
            """
            INSERT INTO django_celery_results_taskresult
                (task_id, task_name, status, worker, content_type, content_encoding, result, task_args,
                 task_kwargs, meta, periodic_task_name, date_created, date_started, date_done)
            SELECT 'bench-' || g, (%s::text[])[1 + g %% 4],
                   CASE WHEN g %% 50 = 0 THEN 'FAILURE' ELSE 'SUCCESS' END,
                   'worker' || (g %% 4) || '@bench', 'application/json', 'utf-8', '"pong"', '"()"', '"{}"',
                   '{"children": []}', CASE WHEN g %% 3 = 0 THEN 'bench schedule' END,
                   now() - g * interval '2.592 seconds', now() - g * interval '2.592 seconds',
                   now() - g * interval '2.592 seconds'
            FROM generate_series(1, %s) AS g
            """,
            [TASKS, ROWS],
        )
        cursor.execute("VACUUM ANALYZE django_celery_results_taskresult")


def measure(client, url: str) -> float:
    started = time.perf_counter()
    response = client.get(url)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.status_code
    return elapsed


def main() -> None:
    os.environ.setdefault("ALLOWED_HOSTS", "localhost")
    setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings

    connection.ensure_connection()
    connection.connection.autocommit = True  # VACUUM cannot run inside a transaction
    started = time.perf_counter()
    build()
    print(f"built {ROWS} results in {time.perf_counter() - started:.0f} s", flush=True)

    user_model = get_user_model()
    user = user_model.objects.filter(username="bench-admin").first() or user_model.objects.create_superuser(
        "bench-admin", "bench@localhost", "bench-password"
    )
    client = Client(SERVER_NAME="localhost")
    client.force_login(user)
    variants = {
        "ours": "/admin/django_celery_results/taskresult/",
        "ours_filtered": "/admin/django_celery_results/taskresult/?status=FAILURE",
        "stock": "/stock/django_celery_results/taskresult/",
    }
    with override_settings(ROOT_URLCONF="bench.results_changelist", DEBUG=False):
        for url in variants.values():
            measure(client, url)  # warm caches and connections
        blocks = {name: [] for name in variants}
        for _ in range(BLOCKS):
            timings = {name: [] for name in variants}
            for _ in range(REQUESTS):
                for name, url in variants.items():
                    timings[name].append(measure(client, url))
            for name in variants:
                blocks[name].append(statistics.median(timings[name]))
            print({name: f"{blocks[name][-1]:.1f} ms" for name in variants}, flush=True)
    figure("results.changelist_ms", statistics.median(blocks["ours"]), "ms")
    figure("results.changelist_filtered_ms", statistics.median(blocks["ours_filtered"]), "ms")
    figure("results.stock_changelist_ms", statistics.median(blocks["stock"]), "ms")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_celery_results_taskresult")


if __name__ == "__main__":
    main()
