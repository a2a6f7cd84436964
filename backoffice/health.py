"""GET (or HEAD) /healthz: is the portal able to do its work right now?

Healthy means the database answers, the broker answers, the expected number of workers answer a ping and
beat ticked recently. Every probe has a short timeout and any failure is an answer (503 JSON), never a 500:
a broker connection left stale by a Redis restart raises on first use, and that is "unreachable" too.

Anyone may ask, so anonymous callers are served the last probe's figures (one word per part), at most
SNAPSHOT_TTL_S old, without touching the database or the broker: a stale snapshot is refreshed by one
background thread while callers keep getting the previous one. Staff get a live probe with the details.
The worker ping stops waiting as soon as HEALTH_EXPECTED_WORKERS workers have answered, so a healthy
deployment answers it in milliseconds rather than after the full timeout.
"""

import logging
import threading
import time
from dataclasses import dataclass, field

import redis
from django.conf import settings
from django.db import close_old_connections, connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from backoffice.celery import app as celery_app
from backoffice.redis_client import redis_client

logger = logging.getLogger(__name__)

BROKER_TIMEOUT_S = 0.5
WORKER_PING_TIMEOUT_S = 1.0  # only paid in full when fewer than the expected workers answer
SNAPSHOT_TTL_S = 5.0  # how old the figures served to anonymous callers may be


def _redis() -> redis.Redis:
    return redis_client(timeout=BROKER_TIMEOUT_S)


def check_database() -> tuple[str, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok", ""
    except Exception as exc:  # noqa: BLE001 - any failure is an answer here, never a 500
        return "unreachable", str(exc)


def check_broker(client: redis.Redis) -> tuple[str, str]:
    try:
        client.ping()
        return "ok", ""
    except redis.RedisError as exc:
        return "unreachable", str(exc)


def check_workers() -> tuple[int, list[str], str]:
    """Workers answering a ping: (count, names, error). Stops waiting once the expected number answered."""
    try:
        replies = celery_app.control.ping(timeout=WORKER_PING_TIMEOUT_S, limit=settings.HEALTH_EXPECTED_WORKERS)
    except Exception as exc:  # noqa: BLE001 - a stale pooled connection after a Redis restart raises here
        return 0, [], f"ping failed: {exc}"
    names = sorted(name for reply in replies or [] for name in reply)
    return len(names), names, ""


def check_beat(client: redis.Redis) -> tuple[str, str]:
    try:
        raw = client.get(settings.BEAT_HEARTBEAT_KEY)
    except redis.RedisError as exc:
        return "unknown", str(exc)
    if raw is None:
        return "down", "beat has never ticked against this Redis"
    age = time.time() - float(raw)
    if age > settings.BEAT_STALE_AFTER_SECONDS:
        return "stale", f"last tick {age:.0f} s ago"
    return "ok", f"last tick {age:.1f} s ago"


@dataclass
class Probe:
    summary: dict
    details: dict = field(default_factory=dict)
    taken_at: float = field(default_factory=time.monotonic)

    @property
    def healthy(self) -> bool:
        return self.summary["status"] == "ok"


def probe() -> Probe:
    """Every check, live. Never raises: whatever goes wrong is a failing part."""
    client = _redis()
    try:
        database, database_detail = check_database()
        broker, broker_detail = check_broker(client)
        if broker == "ok":
            workers, worker_names, workers_detail = check_workers()
            beat, beat_detail = check_beat(client)
        else:
            workers, worker_names, workers_detail = 0, [], "broker unreachable"
            beat, beat_detail = "unknown", "broker unreachable"
    except Exception as exc:  # noqa: BLE001 - an unforeseen failure is still a 503 JSON answer
        logger.warning("health probe failed: %s", exc)
        database, database_detail = "unknown", str(exc)
        broker = beat = "unknown"
        broker_detail = beat_detail = workers_detail = ""
        workers, worker_names = 0, []
    finally:
        client.close()
    healthy = database == "ok" and broker == "ok" and workers > 0 and beat == "ok"
    summary = {
        "status": "ok" if healthy else "fail",
        "database": database,
        "broker": broker,
        "workers": workers,
        "beat": beat,
    }
    details = {"database": database_detail, "broker": broker_detail, "workers": worker_names, "beat": beat_detail}
    if workers_detail:
        details["workers_error"] = workers_detail
    return Probe(summary, details)


class _Snapshot:
    """The last probe, per process, refreshed in the background when it is older than SNAPSHOT_TTL_S."""

    def __init__(self):
        self.probe: Probe | None = None
        self.refreshing = threading.Lock()

    def store(self, taken: Probe) -> Probe:
        self.probe = taken
        return taken

    def get(self) -> Probe:
        current = self.probe
        if current is not None and time.monotonic() - current.taken_at < SNAPSHOT_TTL_S:
            return current
        if current is None:
            with self.refreshing:  # the first caller of a process probes; callers beside it wait for that
                if self.probe is None:
                    self.store(probe())
                return self.probe
        if self.refreshing.acquire(blocking=False):
            threading.Thread(target=self._refresh, name="healthz-refresh", daemon=True).start()
        return current

    def _refresh(self) -> None:
        try:
            self.store(probe())
        finally:
            close_old_connections()
            connection.close()  # this thread's own connection must not outlive it
            self.refreshing.release()

    def forget(self) -> None:
        self.probe = None


snapshot = _Snapshot()


@never_cache
@require_safe
def healthz(request):
    if request.user.is_authenticated and request.user.is_staff:
        current = snapshot.store(probe())
        body = {**current.summary, "details": current.details}
    else:
        current = snapshot.get()
        body = current.summary
    return JsonResponse(body, status=200 if current.healthy else 503)
