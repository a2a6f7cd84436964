"""GET /healthz: is the portal able to do its work right now?

Healthy means the database answers, the broker answers, at least one worker answers a ping and beat
ticked recently. Every probe has a short timeout, so the whole answer comes back within about two
seconds even when Redis is gone. Anonymous callers get one word per part; staff also get the details.
"""

import time

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from backoffice.celery import app as celery_app
from backoffice.redis_client import redis_client

BROKER_TIMEOUT_S = 0.5
WORKER_PING_TIMEOUT_S = 1.0


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


def check_workers() -> tuple[int, list[str]]:
    replies = celery_app.control.ping(timeout=WORKER_PING_TIMEOUT_S) or []
    return len(replies), sorted(name for reply in replies for name in reply)


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


@never_cache
@require_GET
def healthz(request):
    client = _redis()
    database, database_detail = check_database()
    broker, broker_detail = check_broker(client)
    workers, worker_names = check_workers() if broker == "ok" else (0, [])
    beat, beat_detail = check_beat(client) if broker == "ok" else ("unknown", "broker unreachable")
    healthy = database == "ok" and broker == "ok" and workers > 0 and beat == "ok"
    body = {
        "status": "ok" if healthy else "fail",
        "database": database,
        "broker": broker,
        "workers": workers,
        "beat": beat,
    }
    if request.user.is_authenticated and request.user.is_staff:
        body["details"] = {
            "database": database_detail,
            "broker": broker_detail,
            "workers": worker_names,
            "beat": beat_detail,
        }
    return JsonResponse(body, status=200 if healthy else 503)
