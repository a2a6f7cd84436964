"""GET /healthz: one word per part for everyone, details for staff, 503 naming the failing part."""

import socket
import threading
import time

import pytest

from backoffice import health
from backoffice.embedded_redis import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_snapshot(monkeypatch):
    """Each test probes afresh: no figures cached for anonymous callers by an earlier test."""
    monkeypatch.setattr(health, "snapshot", health._Snapshot())


@pytest.fixture
def hung_redis():
    """A TCP server that accepts connections and never answers: the worst kind of broker outage."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_broker_that_never_answers_gives_503_naming_the_broker_within_two_seconds(client, settings, hung_redis):
    settings.REDIS_URL = hung_redis  # the probe reads it per request

    started = time.monotonic()
    response = client.get("/healthz")
    elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert response.json() == {
        "status": "fail",
        "database": "ok",
        "broker": "unreachable",
        "workers": 0,
        "beat": "unknown",
    }
    # The promise is a bound set by the probe timeouts, not a speed figure: a hung broker must not
    # hold the request (without socket timeouts this call blocks for minutes).
    assert elapsed < 2.0


def test_refused_broker_connection_gives_503(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["broker"] == "unreachable"


def test_no_worker_and_no_beat_is_unhealthy_with_one_word_each_for_anonymous(client, redis_client):
    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"status": "fail", "database": "ok", "broker": "ok", "workers": 0, "beat": "down"}


def test_stale_beat_heartbeat_is_reported(client, settings, redis_client):
    redis_client.set(settings.BEAT_HEARTBEAT_KEY, time.time() - settings.BEAT_STALE_AFTER_SECONDS - 5)

    response = client.get("/healthz")

    assert response.json()["beat"] == "stale"


def test_staff_see_details_anonymous_do_not(client, admin_user, redis_client):
    anonymous = client.get("/healthz").json()
    client.force_login(admin_user)
    staff = client.get("/healthz").json()

    assert "details" not in anonymous
    assert staff["details"]["beat"] == "beat has never ticked against this Redis"
    assert staff["details"]["workers"] == []
