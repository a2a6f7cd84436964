"""`make bench`: run every benchmark under bench/ (or those whose figures start with --only) and print
their figures, one a line as `figure: <name> <value> <unit>`, then a table.

Benchmarks need PostgreSQL and Redis: DATABASE_URL / REDIS_URL, defaulting to the local services
(postgres://127.0.0.1:5432, redis://127.0.0.1:6379/15). The runner creates a fresh database
`backoffice_bench` (or the one named in BENCH_DATABASE_URL), migrates it, runs each benchmark module as
its own process (`python -m bench.<module>`), and drops the database at the end.

A benchmark module sets FIGURE_PREFIX (e.g. "points") and, when run, prints its figure lines; each of our
figures sits beside the stock component's figure from the same run, so ratios hold on a noisy machine.
"""

import argparse
import importlib
import os
import pkgutil
import re
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
FIGURE = re.compile(r"^figure: (\S+) (\S+) ?(.*)$")


def bench_database_url() -> str:
    if os.environ.get("BENCH_DATABASE_URL"):
        return os.environ["BENCH_DATABASE_URL"]
    base = os.environ.get("DATABASE_URL", "postgres://root@127.0.0.1:5432/postgres")
    if not base.startswith(("postgres://", "postgresql://")):
        sys.exit("make bench needs PostgreSQL: set DATABASE_URL (or BENCH_DATABASE_URL) to a postgres:// URL")
    return base.rsplit("/", 1)[0] + "/backoffice_bench"


def _admin_sql(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(sql)


def modules(only: str | None) -> list[str]:
    found = []
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name.startswith("_") or info.name == "common":
            continue
        prefix = getattr(importlib.import_module(f"bench.{info.name}"), "FIGURE_PREFIX", None)
        if prefix and (only is None or prefix.startswith(only) or only.startswith(prefix)):
            found.append(info.name)
    return sorted(found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run only benchmarks whose figures start with this prefix")
    args = parser.parse_args()

    url = bench_database_url()
    name = url.rsplit("/", 1)[1]
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
        "DJANGO_SETTINGS_MODULE": "backoffice.settings",
        "DEBUG": "1",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    _admin_sql(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin_sql(url, f'CREATE DATABASE "{name}"')
    figures: list[tuple[str, str, str]] = []
    failed = []
    try:
        subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=BASE_DIR, env=env, check=True
        )
        for module in modules(args.only):
            print(f"== bench.{module}", flush=True)
            started = time.monotonic()
            proc = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", f"bench.{module}"],
                cwd=BASE_DIR,
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            for line in proc.stdout:
                print(line, end="", flush=True)
                if match := FIGURE.match(line.strip()):
                    figures.append(match.groups())
            if proc.wait() != 0:
                failed.append(module)
            print(f"== bench.{module} took {time.monotonic() - started:.0f} s", flush=True)
    finally:
        _admin_sql(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    if figures:
        width = max(len(name) for name, _, _ in figures)
        print("\n" + "figure".ljust(width) + "  value  unit")
        for fname, value, unit in figures:
            print(f"{fname.ljust(width)}  {value}  {unit}")
    if failed:
        print(f"benchmarks that failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
