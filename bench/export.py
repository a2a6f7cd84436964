"""Export of 1,000,000 ledger rows to CSV and to .xlsx: our background job against django-import-export's stock
export and `psql \\copy` of the same query, in the same run.

Each export runs in its own fresh process (as a worker would run it), so its peak memory is its own (VmHWM of
the process after exec; psql's ru_maxrss from wait4 in a small launcher, since Linux carries a forking
parent's high-water mark across exec): ours = `export_job_run` (ChangeList query, exact count, COPY to file with formula
neutralising in the query); stock = a ModelResource over the same columns, `export()` + `dataset.csv`; psql =
`\\copy (<our compiled query>) to <file> csv`; xlsx = the same job with file_format="xlsx". Ours, xlsx and psql
run three times, alternated (median); stock once (it takes over a minute). Figures: export.ours_s,
export.ours_peak_mb, export.xlsx_s, export.xlsx_peak_mb, export.stock_s, export.stock_peak_mb, export.psql_s,
export.psql_peak_mb and the ratios. Goals: ours <= 2x psql, <= 100 MB, >= 40x faster than stock; xlsx <= 4x
ours (the CSV of the same run), <= 150 MB.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIGURE_PREFIX = "export"

ROWS = int(os.environ.get("BENCH_EXPORT_ROWS", "1000000"))
# The ledger's own 11 columns (as in ANCHORS.md section 3): every export writes the same cells, and the stock
# resource is measured on plain fields rather than on per-row related lookups.
COLUMNS = [
    "id",
    "serial_number",
    "account",
    "amount",
    "balance_before",
    "balance_after",
    "kind",
    "order_number",
    "idempotency_key",
    "reason",
    "created_at",
]
ACCOUNTS = 1_000
RUNS = 3
BASE_DIR = Path(__file__).resolve().parent.parent


def _setup():
    from bench.common import setup

    setup()


def build_ledger(rows: int) -> None:
    """rows ledger entries over ACCOUNTS accounts, in one INSERT ... SELECT (every 100th reason is a formula)."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.db.models import Max, Min

    from points.models import Account

    user_model = get_user_model()
    users = user_model.objects.bulk_create(
        [user_model(username=f"bench-export-{i}", password="!") for i in range(ACCOUNTS)]  # noqa: S106 - unusable
    )
    Account.objects.bulk_create([Account(user=user, balance=0) for user in users])
    bounds = Account.objects.aggregate(first=Min("id"), last=Max("id"))
    first, last = bounds["first"], bounds["last"]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO points_ledgerentry (serial_number, account_id, amount, balance_before, balance_after, kind,
                order_number, idempotency_key, reason, language, country, location, created_at)
            SELECT 'B' || lpad(g::text, 12, '0'), %(first)s + g %% (%(last)s - %(first)s + 1), a.amount,
                   a.before, a.before + a.amount,
                   (ARRAY['award','redeem','refund','adjust'])[1 + g %% 4],
                   CASE WHEN g %% 7 = 0 THEN 'O-' || g ELSE '' END,
                   'bench:' || g,
                   CASE WHEN g %% 100 = 0 THEN '=HYPERLINK("http://x/' || g || '")' ELSE 'award for action ' || g END,
                   'en', 'NZ', 'Wellington', now() - (g || ' seconds')::interval
            FROM generate_series(1, %(rows)s) AS g,
                 LATERAL (SELECT CASE WHEN g %% 3 = 0 THEN -(g %% 20 + 1) ELSE g %% 50 + 1 END AS amount,
                                 100 + g %% 1000 AS before) AS a
            """,
            {"rows": rows, "first": first, "last": last},
        )
        cursor.execute("ANALYZE points_ledgerentry")


def _vm_hwm_mb() -> float:
    """This process image's peak resident set (reset at exec, unlike ru_maxrss)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _wait(proc: subprocess.Popen) -> float:
    """Wait for a child; its own peak RSS in MB."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
    return usage.ru_maxrss / 1024


def _child(*args: str, env: dict) -> dict:
    """Run `python -m bench.export <args>` and return the JSON it prints last."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.export", *args],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    return f"postgresql://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def child_psql(url: str, sql: str, path: str) -> None:
    """A small launcher (no Django loaded): psql's wall time and its own peak RSS."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        ["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", f"\\copy ({sql}) to '{path}' with (format csv)"],
        stdout=subprocess.DEVNULL,
    )
    peak = _wait(proc)
    print(json.dumps({"seconds": time.perf_counter() - started, "peak_mb": peak}))


def main() -> None:
    _setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from backoffice.exports.models import ExportJob
    from backoffice.exports.registry import get_target
    from backoffice.exports.selectors import export_rows, export_selection
    from bench.common import Timer, figure, median

    target = get_target("ledger")
    columns = COLUMNS
    with Timer() as built:
        build_ledger(ROWS)
    print(f"built {ROWS} ledger rows in {built.seconds:.1f} s", flush=True)

    admin = get_user_model().objects.create_superuser("bench-export-admin", "b@example.com", "x")
    selection = export_selection(target=target, user=admin, query_string="")
    rows_query = export_rows(target=target, queryset=selection.queryset, columns=columns)
    sql, params = rows_query.query.get_compiler(using="default").as_sql()
    with connection.cursor() as cursor:
        full_sql = cursor.cursor.mogrify(sql, params)

    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        root = Path(tmp)
        env = {**os.environ, "EXPORTS_ROOT": str(root), "DJANGO_SETTINGS_MODULE": "backoffice.settings"}
        ours, ours_peak, psql, psql_peak, book, book_peak = [], [], [], [], [], []
        for run in range(RUNS):
            job = ExportJob.objects.create(target="ledger", columns=columns, created_by=admin, rows_total=ROWS)
            result = _child("ours", str(job.pk), env=env)
            assert result["status"] == "done" and result["rows"] == ROWS, result
            ours.append(result["seconds"])
            ours_peak.append(result["peak_mb"])
            (root / result["file"]).unlink()
            job = ExportJob.objects.create(
                target="ledger", columns=columns, created_by=admin, rows_total=ROWS, file_format="xlsx"
            )
            result = _child("ours", str(job.pk), env=env)
            assert result["status"] == "done" and result["rows"] == ROWS, result
            book.append(result["seconds"])
            book_peak.append(result["peak_mb"])
            xlsx_mb = (root / result["file"]).stat().st_size / 1e6
            (root / result["file"]).unlink()
            result = _child("psql", _database_url(), full_sql, str(root / f"psql-{run}.csv"), env=env)
            psql.append(result["seconds"])
            psql_peak.append(result["peak_mb"])
            print(
                f"run {run + 1}: ours {ours[-1]:.2f} s {ours_peak[-1]:.0f} MB, xlsx {book[-1]:.2f} s "
                f"{book_peak[-1]:.0f} MB ({xlsx_mb:.0f} MB file), psql {psql[-1]:.2f} s",
                flush=True,
            )
            (root / f"psql-{run}.csv").unlink()

        stock = _child("stock", str(root / "stock.csv"), env=env)
        assert stock["rows"] == ROWS, stock
        stock_peak = stock["peak_mb"]

    figure("export.rows", ROWS, "rows")
    figure("export.ours_s", median(ours), "s")
    figure("export.ours_peak_mb", max(ours_peak), "MB")
    figure("export.xlsx_s", median(book), "s")
    figure("export.xlsx_peak_mb", max(book_peak), "MB")
    figure("export.psql_s", median(psql), "s")
    figure("export.psql_peak_mb", max(psql_peak), "MB")
    figure("export.stock_s", stock["seconds"], "s")
    figure("export.stock_peak_mb", stock_peak, "MB")
    figure("export.ours_vs_psql", median(ours) / median(psql), "x (goal <= 2)")
    figure("export.stock_vs_ours", stock["seconds"] / median(ours), "x faster (goal >= 40)")
    figure("export.xlsx_vs_csv", median(book) / median(ours), "x (goal <= 4)")


def child_ours(job_id: str) -> None:
    """One background job run, as the worker runs it."""
    _setup()
    from backoffice.exports.models import ExportJob
    from backoffice.exports.services import export_job_run

    started = time.perf_counter()
    status = export_job_run(job_id=int(job_id))
    seconds = time.perf_counter() - started
    job = ExportJob.objects.get(pk=job_id)
    print(
        json.dumps(
            {
                "status": str(status),
                "rows": job.rows_written,
                "seconds": seconds,
                "file": job.file_name,
                "peak_mb": _vm_hwm_mb(),
            }
        )
    )


def child_stock(path: str) -> None:
    """django-import-export's stock export of the same columns: resource.export() then dataset.csv."""
    _setup()
    from import_export import resources

    from points.models import LedgerEntry

    resource = resources.modelresource_factory(
        LedgerEntry, meta_options={"fields": tuple(COLUMNS), "export_order": tuple(COLUMNS)}
    )()
    started = time.perf_counter()
    dataset = resource.export(LedgerEntry.objects.order_by("-id"))
    Path(path).write_text(dataset.csv, encoding="utf-8")
    seconds = time.perf_counter() - started
    print(json.dumps({"rows": len(dataset), "seconds": seconds, "peak_mb": _vm_hwm_mb()}))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "ours":
        child_ours(sys.argv[2])
    elif len(sys.argv) > 1 and sys.argv[1] == "stock":
        child_stock(sys.argv[2])
    elif len(sys.argv) > 1 and sys.argv[1] == "psql":
        child_psql(*sys.argv[2:5])
    else:
        main()
