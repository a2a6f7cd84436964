"""/healthz under strangers and faults: anonymous callers are served cached figures (no database, no broker,
HEAD too), the worker ping stops at the expected number of workers, and a broker connection left stale by a
Redis restart is a 503 JSON answer, never a 500."""

import time

import pytest
from celery import Celery
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from backoffice import health
from backoffice.celery import app
from backoffice.embedded_redis import free_port, start
from tests.processes import wait_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_snapshot(monkeypatch):
    """No figures cached by an earlier test."""
    if hasattr(health, "snapshot"):
        monkeypatch.setattr(health, "snapshot", health._Snapshot())


@pytest.fixture
def beat_alive(settings, redis_client):
    redis_client.set(settings.BEAT_HEARTBEAT_KEY, time.time())


@pytest.fixture
def pings(monkeypatch):
    """Every worker ping the probe sends, answered at once by one worker."""
    sent = []

    def ping(**kwargs):
        sent.append(kwargs)
        return [{"w1@localhost": {"ok": "pong"}}]

    monkeypatch.setattr(app.control, "ping", ping)
    return sent


def test_anonymous_callers_are_served_cached_figures_without_database_or_broker(client, pings, beat_alive):
    first = client.get("/healthz")
    with CaptureQueriesContext(connection) as queries:
        answers = [client.get("/healthz") for _ in range(20)]

    assert first.status_code == 200
    assert {response.status_code for response in answers} == {200}
    assert answers[-1].json() == {"status": "ok", "database": "ok", "broker": "ok", "workers": 1, "beat": "ok"}
    assert len(pings) == 1  # the first call probed; the next twenty were served from its snapshot
    assert len(queries) == 0


def test_head_is_answered_like_get(client, pings, beat_alive):
    response = client.head("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


def test_staff_always_get_a_live_probe_with_details(client, admin_user, pings, beat_alive):
    client.force_login(admin_user)

    bodies = [client.get("/healthz").json() for _ in range(3)]

    assert len(pings) == 3
    assert bodies[-1]["details"]["workers"] == ["w1@localhost"]


def test_the_worker_ping_stops_waiting_at_the_expected_number_of_workers(client, admin_user, pings, settings):
    settings.HEALTH_EXPECTED_WORKERS = 3
    client.force_login(admin_user)

    client.get("/healthz")

    assert pings == [{"timeout": health.WORKER_PING_TIMEOUT_S, "limit": 3}]


def test_a_stale_snapshot_is_refreshed_in_the_background_while_callers_get_the_last_figures(
    client, pings, beat_alive, settings, monkeypatch
):
    monkeypatch.setattr(health, "SNAPSHOT_TTL_S", 0.0)
    assert client.get("/healthz").json()["broker"] == "ok"
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # the broker goes away

    served = client.get("/healthz")  # answered from the last figures; a refresh starts beside it
    wait_for(lambda: health.snapshot.probe.summary["broker"] != "ok", timeout=10, message="the refresh")
    wait_for(lambda: not health.snapshot.refreshing.locked(), timeout=10, message="the refresh to end")
    refreshed = client.get("/healthz")

    assert served.status_code == 200
    assert refreshed.status_code == 503
    assert refreshed.json()["broker"] == "unreachable"


@pytest.mark.slow
def test_a_real_worker_answers_the_ping_without_the_probe_waiting_out_its_timeout(
    client, admin_user, live_worker, beat_alive
):
    client.force_login(admin_user)

    started = time.monotonic()
    body = client.get("/healthz").json()
    elapsed = time.monotonic() - started

    assert body["workers"] == 1
    assert body["details"]["workers"] == [live_worker.hostname]
    # Bounded by the count, not the clock: without `limit` every probe lasts the whole ping timeout.
    assert elapsed < health.WORKER_PING_TIMEOUT_S


@pytest.fixture
def own_redis(settings, monkeypatch):
    """A redis-server of this test's own (so it can be restarted) and a Celery app whose broker it is."""
    port = free_port()
    url, server = start(port=port)
    settings.REDIS_URL = url
    broker = Celery("healthz-test", broker=url, set_as_current=False)
    broker.conf.broker_connection_timeout = 0.5
    monkeypatch.setattr(health, "celery_app", broker)
    state = {"server": server, "port": port}
    yield state
    state["server"].terminate()
    state["server"].wait()
    broker.close()


@pytest.mark.parametrize("who", ["staff", "anonymous"])
def test_a_broker_connection_left_stale_by_a_redis_restart_gives_503_json(admin_user, own_redis, who):
    client = Client(raise_request_exception=False)
    if who == "staff":
        client.force_login(admin_user)
    assert client.get("/healthz").status_code == 503  # no worker: but the pooled connection is now open
    if hasattr(health, "snapshot"):
        health.snapshot.forget()

    own_redis["server"].terminate()
    own_redis["server"].wait()
    _, own_redis["server"] = start(port=own_redis["port"])  # Redis is back, the pooled connection is not
    response = client.get("/healthz")

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.json()["broker"] == "ok"
    assert response.json()["workers"] == 0
