"""`make chaos`: break PostgreSQL, Redis, workers and beat under load; fail on any loss or duplicate.

    python -m tests.chaos            the full suite (~10 minutes)
    python -m tests.chaos --short    the version CI runs (a few minutes)
    python -m tests.chaos --only redis_down,beat_failover

Runs on a PostgreSQL cluster and a redis-server of its own (see tests/chaos/infra.py), never the machine's.
Prints one line of figures per scenario; exits 1 if any promise was broken, 0 otherwise.
"""

import argparse
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path


def main(argv=None) -> int:
    from tests.chaos.infra import OwnPostgres, OwnRedis, unavailable_reason

    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="smaller loads and outages (what CI runs)")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    args = parser.parse_args(argv)

    reason = unavailable_reason()
    if reason:
        print(f"chaos: cannot run here: {reason}")
        return 2

    postgres = OwnPostgres().init()
    postgres.create_database()
    redis = OwnRedis().start()
    tmp = Path(tempfile.mkdtemp(prefix="chaos-logs-"))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="backoffice.settings",
        DATABASE_URL=postgres.url(),
        REDIS_URL=redis.url(),
        DEBUG="1",
        SECRET_KEY=os.environ.get("SECRET_KEY") or "chaos-suite-throwaway-key-" + "x" * 40,
        CONN_MAX_AGE="60",
        BEAT_LOCK_TTL_SECONDS="3",  # beats hand over faster than the default 15 s, so a resend shows sooner
    )
    stack = None
    broken = []
    try:
        import django

        django.setup()
        import logging

        from django.core.management import call_command

        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per check-in would bury the figures

        from tests.chaos import scenarios

        call_command("migrate", verbosity=0)
        call_command("setup_portal", verbosity=0)
        scenarios.set_relay_interval(scenarios.RELAY_EVERY_S)
        size = scenarios.SHORT if args.short else scenarios.FULL
        names = [n for n in args.only.split(",") if n] or list(scenarios.SCENARIOS)
        unknown = set(names) - set(scenarios.SCENARIOS)
        if unknown:
            parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
        stack = scenarios.Stack(tmp, postgres, redis).start(workers=2, beats=2)
        print(f"chaos: own PostgreSQL :{postgres.port}, own Redis :{redis.port}, logs in {tmp}", flush=True)
        for name in names:
            started = time.monotonic()
            try:
                figures = scenarios.SCENARIOS[name](stack, size)
            except AssertionError as exc:
                broken.append(name)
                print(f"chaos {name}: BROKEN after {time.monotonic() - started:.0f} s\n{exc}", flush=True)
                _print_logs(stack)
            except Exception:
                broken.append(name)
                print(f"chaos {name}: ERROR\n{traceback.format_exc()}", flush=True)
                _print_logs(stack)
            else:
                figures["scenario_s"] = round(time.monotonic() - started, 1)
                print(figures.line(), flush=True)
            try:
                stack.supervise()
            except AssertionError as exc:
                print(f"chaos: a worker could not be restarted: {exc}", flush=True)
    finally:
        if stack is not None:
            stack.stop()
        redis.destroy()
        postgres.destroy()
    print(f"chaos: {len(names) - len(broken)} passed, {len(broken)} failed")
    return 1 if broken else 0


def _print_logs(stack) -> None:
    for proc in [stack.web, *stack.workers, *stack.beats]:
        if proc is not None:
            print(f"--- {proc.name} ({proc.log_path.name}) ---\n{proc.log()[-3000:]}")


if __name__ == "__main__":
    sys.exit(main())
