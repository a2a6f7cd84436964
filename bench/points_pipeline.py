"""Points pipeline: HTTP requests through the capture middleware into the ledger, on PostgreSQL + Redis with a
real worker, beside the seed's naive pattern (one `.delay()` per event, one task and one stored result each)
in the same run.

Three gunicorn servers run side by side on the same code and URLconf (two cheap bench views added): with the
points middleware, with the naive middleware, and with neither. A Python client (threads, keep-alive) drives
them; it shares the 2 cores, so the figures compare variants, they are not capacity figures.

- captured/s: matching signed-in requests per second while no worker runs (the backlog builds in the outbox).
- drain/s: a prefork -c 2 worker (as deploy/Procfile) applying that backlog, first to last applied event.
- the same two for the naive pattern (its backlog is the Redis queue; each task stores a result row).
- added latency: p50/p99 of matching (and non-matching) requests minus the same requests on the server
  without the middleware, variants interleaved request by request. The bench view reads request.user, as an
  endpoint that earns points does, so the session and user lookups are paid by every variant and not counted
  as capture cost.
- the same added latency of the naive pattern, and ours as a fraction of it (goal: <= 0.5).
- one commit: p50/p99 of one small INSERT committed on its own from the bench process, the floor of any capture
  that is durable before the response leaves (what a loaded machine's fsync costs at that moment).
- non-matching overhead: requests/s of a non-matching path with the points middleware against without it.

Figures: points.drain_per_s, points.naive_drain_per_s, points.drain_vs_naive, points.captured_per_s,
points.naive_captured_per_s, points.nonmatching_overhead_pct, points.matching_p50_added_ms,
points.matching_p99_added_ms, points.naive_matching_p50_added_ms, points.naive_matching_p99_added_ms,
points.matching_p50_vs_naive, points.matching_p99_vs_naive, points.one_commit_p50_ms, points.one_commit_p99_ms,
points.nonmatching_p99_added_ms.
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
import uuid
from pathlib import Path

from celery import shared_task

from bench.common import figure, setup

FIGURE_PREFIX = "points"
EVENTS = int(os.environ.get("BENCH_POINTS_EVENTS", 20_000))
NAIVE_EVENTS = int(os.environ.get("BENCH_POINTS_NAIVE_EVENTS", 3_000))
USERS = 500
CLIENT_THREADS = 4
LATENCY_REQUESTS = int(os.environ.get("BENCH_POINTS_LATENCY_REQUESTS", 600))  # per variant and round, sequential
ROUNDS = 3
THROUGHPUT_SECONDS = 4.0
STALL_SECONDS = 20  # no new applied event for this long: the rest was lost
BASE_DIR = Path(__file__).resolve().parent.parent

URLS_MODULE = """
from django.http import HttpResponse
from django.urls import include, path


def hit(request, kind, business_id):
    # As any endpoint that earns points: it knows who is asking (signed-in users only). Every variant pays that
    # lookup alike, so "added" is what the capture itself costs.
    if not request.user.is_authenticated:
        return HttpResponse("sign in first", status=401)
    return HttpResponse("ok")


urlpatterns = [
    path("bench/<slug:kind>/<int:business_id>/", hit),
    path("", include("backoffice.urls")),
]
"""

SETTINGS_MODULE = """
from backoffice.settings import *  # noqa: F403
from backoffice.settings import MIDDLEWARE

ROOT_URLCONF = "points_bench_urls"
MIDDLEWARE = [m for m in MIDDLEWARE if m != "points.middleware.PointsCaptureMiddleware"]
MIDDLEWARE.insert(MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1, {middleware!r})
MIDDLEWARE = [m for m in MIDDLEWARE if m]
"""


class NaiveCaptureMiddleware:
    """The seed's pattern: on a match, one `.delay()` per event, inside the request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.utils import timezone

        from points import matching

        response = self.get_response(request)
        for action, business_id in matching.index.match(request.method, request.path_info):
            if action.succeeded(response) and request.user.is_authenticated:
                naive_award_task.delay(request.user.pk, action.action_id, business_id, timezone.now().isoformat())
        return response


@shared_task(name="bench.points_naive_award")
def naive_award_task(user_id: int, action_id: int, business_id: str, occurred_at: str) -> int:
    """One event, one transaction: the record, then one ledger entry per active rule (result stored)."""
    from django.db import transaction
    from django.utils.dateparse import parse_datetime

    from points.models import ActionRecord, Rule, Status
    from points.services import ledger_append

    with transaction.atomic():
        record = ActionRecord.objects.create(
            event_id=uuid.uuid4(),
            user_id=user_id,
            action_id=action_id,
            business_id=business_id,
            occurred_at=parse_datetime(occurred_at),
        )
        for rule in Rule.objects.filter(action_id=action_id, status=Status.ACTIVE):
            ledger_append(
                user_id=user_id,
                amount=rule.points,
                kind="award",
                idempotency_key=f"award:{record.event_id}:{rule.pk}",
                extra={"rule": rule, "source": record},
            )
    return record.pk


def _free_port() -> int:
    from backoffice.embedded_redis import free_port

    return free_port()


def _start(args, env, log_name, tmp) -> subprocess.Popen:
    log = open(Path(tmp) / log_name, "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(args, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    with contextlib.suppress(ProcessLookupError):  # children left in the group
        os.killpg(proc.pid, signal.SIGKILL)


def _web(tmp, variant: str, middleware: str) -> tuple[subprocess.Popen, int]:
    module = f"points_bench_settings_{variant}"
    (Path(tmp) / f"{module}.py").write_text(SETTINGS_MODULE.format(middleware=middleware))
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": f"{tmp}:{BASE_DIR}", "DJANGO_SETTINGS_MODULE": module}
    proc = _start(
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
            "120",
        ],
        env,
        f"web-{variant}.log",
        tmp,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/bench/other/1/")
            if conn.getresponse().status == 401:  # up, and asking who is there (the probe has no session)
                return proc, port
        except OSError:
            time.sleep(0.2)
    _stop(proc)
    raise RuntimeError(f"{variant} web did not start: {(Path(tmp) / f'web-{variant}.log').read_text()[-2000:]}")


@contextlib.contextmanager
def _worker_running(tmp):
    """A worker for the length of the block, stopped whatever happens inside it."""
    worker = _worker(tmp)
    try:
        yield worker
    finally:
        _stop(worker)


def _worker(tmp) -> subprocess.Popen:
    return _start(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "backoffice",
            "worker",
            "--queues",
            "default,points,orders",
            "--events",
            "--concurrency",
            "2",
            "--loglevel",
            "WARNING",
            "--include",
            "bench.points_pipeline",
            "--hostname",
            f"bench-{uuid.uuid4().hex[:6]}@%h",
            "--without-mingle",
            "--without-gossip",
        ],
        {**os.environ, "DJANGO_SETTINGS_MODULE": "backoffice.settings"},
        "worker.log",
        tmp,
    )


class Client:
    """Keep-alive GETs with a session cookie; per-request latency in seconds."""

    def __init__(self, port: int, cookie: str):
        self.port, self.cookie = port, cookie
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def get(self, path: str) -> float:
        started = time.perf_counter()
        try:
            self.conn.request("GET", path, headers={"Cookie": self.cookie})
            response = self.conn.getresponse()
            response.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            raise
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status}")
        return time.perf_counter() - started


def _latencies(port: int, cookie: str, prefix: str, count: int) -> list[float]:
    client = Client(port, cookie)
    return [client.get(f"{prefix}{i}/") for i in range(count)]


def _interleaved(targets: dict[str, tuple[int, str]], cookie: str, count: int) -> dict[str, list[float]]:
    """`count` requests to each target (name: (port, path prefix)), one keep-alive connection each, taken in turn
    request by request (the order rotating), so that the drift of a shared machine hits every variant alike."""
    clients = {name: Client(port, cookie) for name, (port, _prefix) in targets.items()}
    names = list(targets)
    out = {name: [] for name in names}
    for i in range(count):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            out[name].append(clients[name].get(f"{targets[name][1]}{i}/"))
    return out


def _burst(port: int, cookies: list[str], prefix: str, *, total: int | None = None, seconds: float | None = None):
    """CLIENT_THREADS clients; either `total` requests in all, or as many as fit in `seconds`.

    Returns (successful requests, failed requests, wall seconds); a failure is counted, never fatal.
    """
    done = [0] * CLIENT_THREADS
    failed = [0] * CLIENT_THREADS
    stop_at = time.monotonic() + seconds if seconds else None

    def run(index: int) -> None:
        client = Client(port, cookies[index])
        share = (total // CLIENT_THREADS + (index < total % CLIENT_THREADS)) if total else None
        i = 0
        while (share is None or i < share) and (stop_at is None or time.monotonic() < stop_at):
            client.cookie = cookies[(index + i * CLIENT_THREADS) % len(cookies)]  # many users, as on a site
            try:
                client.get(f"{prefix}{index * 1_000_000 + i}/")
                done[index] += 1
            except (RuntimeError, http.client.HTTPException, OSError):
                failed[index] += 1
            i += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(CLIENT_THREADS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done), sum(failed), time.perf_counter() - started


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if q < 100 else max(values)


def _cookies() -> list[str]:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore

    model = get_user_model()
    unusable = make_password(None)
    users = model.objects.bulk_create(model(username=f"bench-points-{i}", password=unusable) for i in range(USERS))
    cookies = []
    for user in users:
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        cookies.append(f"sessionid={session.session_key}")
    return cookies


def _drain_rate(action_id: int, expected: int, timeout: float) -> tuple[float, int]:
    """(events per second from the first to the last applied record of the action, records applied), once
    `expected` are applied or nothing more arrives for STALL_SECONDS (events lost on the way)."""
    from django.db.models import Max, Min

    from points.models import ActionRecord

    records = ActionRecord.objects.filter(action_id=action_id)
    deadline = time.monotonic() + timeout
    seen, last_change = -1, time.monotonic()
    while (count := records.count()) < expected:
        if count != seen:
            seen, last_change = count, time.monotonic()
        if time.monotonic() - last_change > STALL_SECONDS or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    span = records.aggregate(first=Min("recorded_at"), last=Max("recorded_at"))
    if span["first"] is None:
        return 0.0, 0
    return count / max((span["last"] - span["first"]).total_seconds(), 1e-3), count


def _middleware_cost_us(calls: int = 200_000) -> float:
    """The capture middleware's own cost on a non-matching request, in microseconds, measured in-process
    (no HTTP client noise): the middleware around a trivial view minus the bare view, best of 5."""
    from django.http import HttpResponse
    from django.test import RequestFactory

    from points.middleware import PointsCaptureMiddleware

    def view(request):
        return HttpResponse("ok")

    request = RequestFactory().get("/bench/other/1/")
    wrapped = PointsCaptureMiddleware(view)
    wrapped(request)  # compiles the actions
    best = {}
    for name, handler in (("bare", view), ("wrapped", wrapped)) * 5:
        started = time.perf_counter()
        for _ in range(calls):
            handler(request)
        best[name] = min(best.get(name, float("inf")), (time.perf_counter() - started) / calls)
    return (best["wrapped"] - best["bare"]) * 1e6


def _one_commit_ms(count: int) -> list[float]:
    """The floor of any durable capture, from this process: one small outbox INSERT committed on its own."""
    from django.utils import timezone

    from points.models import PendingEvent

    seconds = []
    for _ in range(count):
        event = PendingEvent(event_id=uuid.uuid4(), user_id=0, action_id=0, occurred_at=timezone.now())
        started = time.perf_counter()
        event.save(force_insert=True)
        seconds.append(time.perf_counter() - started)
    PendingEvent.objects.filter(action_id=0).delete()
    return seconds


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def main() -> None:
    setup()
    from backoffice.celery import app
    from points.capture import KICK_KEY, redis_client
    from points.models import Action, LedgerEntry, PendingEvent, Rule, Status
    from points.services import balances_check
    from points.tasks import events_process_batch_task

    actions = {}
    for kind in ("hit", "naive", "timed", "naivetimed"):
        actions[kind] = Action.objects.create(
            code=f"bench-{kind}",
            name=f"Bench {kind}",
            method="GET",
            path_pattern=rf"^/bench/{kind}/(?P<business_id>\d+)/$",
            status=Status.ACTIVE,
        )
        Rule.objects.create(
            name=f"bench {kind}: every",
            action=actions[kind],
            points=1,
            kind="every",
            period="none",
            status=Status.ACTIVE,
        )
    cookies = _cookies()
    app.control.purge()

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "points_bench_urls.py").write_text(URLS_MODULE)
        servers = {}
        try:
            servers["plain"] = _web(tmp, "plain", "")
            servers["points"] = _web(tmp, "points", "points.middleware.PointsCaptureMiddleware")
            servers["naive"] = _web(tmp, "naive", "bench.points_pipeline.NaiveCaptureMiddleware")
            port = {name: server[1] for name, server in servers.items()}

            for name in port:  # warm every server: compiled actions, connections, imports
                _latencies(port[name], cookies[0], "/bench/other/", 50)
            _latencies(port["points"], cookies[0], "/bench/hit/", 20)
            _latencies(port["naive"], cookies[0], "/bench/naive/", 20)

            latency = {key: [] for key in ("plain_hit", "points_hit", "naive_hit", "plain_other", "points_other")}
            rps = {"plain": [], "points": []}
            for _ in range(ROUNDS):  # variants alternated, so drift on a noisy machine hits them alike
                targets = {
                    "plain_hit": (port["plain"], "/bench/hit/"),
                    "points_hit": (port["points"], "/bench/hit/"),
                    "naive_hit": (port["naive"], "/bench/naive/"),
                    "plain_other": (port["plain"], "/bench/other/"),
                    "points_other": (port["points"], "/bench/other/"),
                }
                for key, values in _interleaved(targets, cookies[1], LATENCY_REQUESTS).items():
                    latency[key] += values
                for name in ("plain", "points"):
                    count, _failed, seconds = _burst(port[name], cookies, "/bench/other/", seconds=THROUGHPUT_SECONDS)
                    rps[name].append(count / seconds)

            one_commit = _one_commit_ms(LATENCY_REQUESTS)  # no worker runs yet: these rows are removed unseen

            # Empty the queues before the timed runs: drop the naive tasks of the latency rounds, and apply
            # the events they captured into the outbox (untimed).
            app.control.purge()
            redis_client().delete(KICK_KEY)
            with _worker_running(tmp):
                events_process_batch_task.delay()
                _wait(lambda: PendingEvent.objects.count() == 0, 300, "the warm-up outbox to drain")

            captured, failed, seconds = _burst(port["points"], cookies, "/bench/timed/", total=EVENTS)
            captured_per_s = captured / seconds
            print(f"# captured {captured} events, {failed} requests failed", flush=True)
            with _worker_running(tmp):
                drain_per_s, applied = _drain_rate(actions["timed"].pk, captured, timeout=600)

            naive_sent, naive_failed, seconds = _burst(port["naive"], cookies, "/bench/naivetimed/", total=NAIVE_EVENTS)
            naive_captured_per_s = naive_sent / seconds
            print(f"# naive: {naive_sent} events sent, {naive_failed} requests failed", flush=True)
            with _worker_running(tmp):
                naive_drain_per_s, naive_applied = _drain_rate(actions["naivetimed"].pk, naive_sent, timeout=600)
        finally:
            for proc, _port in servers.values():
                _stop(proc)
            app.control.purge()
            redis_client().delete(KICK_KEY)

    awarded = LedgerEntry.objects.filter(rule__action=actions["timed"]).count()
    mismatched = len(balances_check())
    print(
        f"# ledger: {awarded} awards for {captured} captured events ({applied} applied); naive: {naive_applied} "
        f"applied of {naive_sent} sent; {mismatched} accounts off their ledger",
        flush=True,
    )
    if awarded != captured or applied != captured or mismatched:
        raise SystemExit("the pipeline lost, doubled or misbalanced points")

    ms = 1000.0
    added = {
        "matching_p50": (_pct(latency["points_hit"], 50) - _pct(latency["plain_hit"], 50)) * ms,
        "matching_p99": (_pct(latency["points_hit"], 99) - _pct(latency["plain_hit"], 99)) * ms,
        "naive_p50": (_pct(latency["naive_hit"], 50) - _pct(latency["plain_hit"], 50)) * ms,
        "naive_p99": (_pct(latency["naive_hit"], 99) - _pct(latency["plain_hit"], 99)) * ms,
        "other_p50": (_pct(latency["points_other"], 50) - _pct(latency["plain_other"], 50)) * ms,
        "other_p99": (_pct(latency["points_other"], 99) - _pct(latency["plain_other"], 99)) * ms,
    }
    plain_rps, points_rps = statistics.median(rps["plain"]), statistics.median(rps["points"])
    figure("points.captured_per_s", captured_per_s, "events/s")
    figure("points.drain_per_s", drain_per_s, "events/s")
    figure("points.naive_captured_per_s", naive_captured_per_s, "events/s")
    figure("points.naive_drain_per_s", naive_drain_per_s, "events/s")
    figure("points.drain_vs_naive", drain_per_s / naive_drain_per_s, "x")
    figure("points.matching_p50_ms", _pct(latency["points_hit"], 50) * ms, "ms")
    figure("points.plain_p50_ms", _pct(latency["plain_hit"], 50) * ms, "ms")
    figure("points.matching_p50_added_ms", added["matching_p50"], "ms")
    figure("points.matching_p99_added_ms", added["matching_p99"], "ms")
    figure("points.naive_matching_p50_added_ms", added["naive_p50"], "ms")
    figure("points.naive_matching_p99_added_ms", added["naive_p99"], "ms")
    figure("points.one_commit_p50_ms", _pct(one_commit, 50) * ms, "ms")
    figure("points.one_commit_p99_ms", _pct(one_commit, 99) * ms, "ms")
    for q in ("p50", "p99"):  # a ratio to a cost lost in the noise (<= 0) says nothing: nan
        naive = added[f"naive_{q}"]
        figure(f"points.matching_{q}_vs_naive", added[f"matching_{q}"] / naive if naive > 0 else float("nan"), "x")
    figure("points.nonmatching_p50_added_ms", added["other_p50"], "ms")
    figure("points.nonmatching_p99_added_ms", added["other_p99"], "ms")
    figure("points.nonmatching_rps", points_rps, "req/s")
    figure("points.nonmatching_plain_rps", plain_rps, "req/s")
    figure("points.nonmatching_overhead_pct", (plain_rps - points_rps) / plain_rps * 100, "%")
    cost_us = _middleware_cost_us()
    figure("points.nonmatching_middleware_us", cost_us, "us")
    figure("points.nonmatching_middleware_pct_of_request", cost_us / 1000 / _pct(latency["plain_other"], 50) / 10, "%")
    figure("points.failed_requests", failed, "requests")
    figure("points.naive_failed_requests", naive_failed, "requests")
    figure("points.naive_lost_events", naive_sent + naive_failed - naive_applied, "events")


if __name__ == "__main__":
    main()
