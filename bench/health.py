"""/healthz under load: what an anonymous caller costs the web server, beside a stock Django page.

gunicorn as deploy/Procfile starts it (2 workers x 4 threads) and one real worker (so the ping is answered)
run against the bench database and Redis; beat's heartbeat is set by hand. CLIENTS threads (keep-alive
connections) send anonymous GET /healthz for SECONDS, then the same load against the stock admin login page
(the reference: a Django page with no probe at all). The client shares the 2 cores, so figures compare
variants in one run; the 1-minute load average is printed with them.

Figures: health.anon_p50_ms, health.anon_p99_ms, health.anon_per_s, health.login_page_p50_ms (stock
reference), health.login_page_per_s, health.anon_alone_p50_ms (one request at a time),
health.staff_p50_ms (live probe with details, sequential),
health.loadavg_1m.
"""

import contextlib
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import figure, setup

FIGURE_PREFIX = "health"
CLIENTS = int(os.environ.get("BENCH_HEALTH_CLIENTS", 8))
SECONDS = float(os.environ.get("BENCH_HEALTH_SECONDS", 8))
STAFF_REQUESTS = 20
BASE_DIR = Path(__file__).resolve().parent.parent


def _start(args, env, log_path: Path) -> subprocess.Popen:
    log = log_path.open("wb")
    return subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
        args, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def _stop(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception as exc:  # noqa: BLE001 - not up yet
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}: {last!r}")


def _get(conn: http.client.HTTPConnection, path: str, headers: dict) -> int:
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    response.read()
    return response.status


def _load(port: int, path: str, *, headers: dict | None = None) -> tuple[list[float], int]:
    """CLIENTS threads hammering one path for SECONDS; returns every latency (s) and the non-2xx/503 count."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + SECONDS

    def run():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                status = _get(conn, path, headers or {})
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status = 0
            mine.append(time.perf_counter() - started)
            if status not in (200, 503):
                with lock:
                    errors[0] += 1
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=run) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors[0]


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    setup()
    import redis
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    from backoffice.embedded_redis import free_port

    user, _ = get_user_model().objects.get_or_create(
        username="bench-health", defaults={"is_staff": True, "is_superuser": True}
    )
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.save()
    redis.Redis.from_url(settings.REDIS_URL).set(settings.BEAT_HEARTBEAT_KEY, time.time() + 3600)

    port = free_port()
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    with tempfile.TemporaryDirectory(prefix="bench-health-") as tmp:
        web = _start(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "backoffice.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--threads",
                "4",
                "--timeout",
                "60",
            ],  # fmt: skip
            env,
            Path(tmp) / "web.log",
        )
        worker = _start(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "backoffice",
                "worker",
                "--queues",
                "default",
                "--concurrency",
                "1",
                "--hostname",
                f"bench-health-{port}@localhost",
                "--without-mingle",
                "--without-gossip",
            ],  # fmt: skip
            env,
            Path(tmp) / "worker.log",
        )
        try:

            def up() -> bool:
                return (
                    web.poll() is None
                    and _get(http.client.HTTPConnection("127.0.0.1", port, timeout=10), "/admin/login/", {}) == 200
                )

            _wait(up, 60, "gunicorn")
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            from backoffice.celery import app

            _wait(lambda: app.control.ping(timeout=0.5), 60, "the worker")
            staff = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session.session_key}"}
            staff_times = []
            for _ in range(STAFF_REQUESTS):
                started = time.perf_counter()
                status = _get(conn, "/healthz", staff)
                staff_times.append(time.perf_counter() - started)
            print(f"staff /healthz answered {status}", flush=True)
            anonymous_alone = []
            for _ in range(STAFF_REQUESTS):
                started = time.perf_counter()
                _get(conn, "/healthz", {})
                anonymous_alone.append(time.perf_counter() - started)
            conn.close()

            anonymous, anonymous_errors = _load(port, "/healthz")
            login, login_errors = _load(port, "/admin/login/")
            load_1m = os.getloadavg()[0]
        except Exception:
            print((Path(tmp) / "web.log").read_text()[-3000:], (Path(tmp) / "worker.log").read_text()[-3000:])
            raise
        finally:
            _stop(worker)
            _stop(web)
        if anonymous_errors or login_errors:
            print(f"errors: healthz {anonymous_errors}, login page {login_errors}", flush=True)

    figure("health.anon_p50_ms", statistics.median(anonymous) * 1000, "ms")
    figure("health.anon_p99_ms", _percentile(anonymous, 99) * 1000, "ms")
    figure("health.anon_per_s", len(anonymous) / SECONDS, "req/s")
    figure("health.login_page_p50_ms", statistics.median(login) * 1000, "ms (stock admin login page, same load)")
    figure("health.login_page_per_s", len(login) / SECONDS, "req/s")
    figure("health.anon_alone_p50_ms", statistics.median(anonymous_alone) * 1000, "ms (sequential, no other load)")
    figure("health.staff_p50_ms", statistics.median(staff_times) * 1000, "ms (live probe, sequential)")
    figure("health.loadavg_1m", load_1m, f"(1-minute load average, {os.cpu_count()} cores, {CLIENTS} clients)")


if __name__ == "__main__":
    main()
