"""/ops/flower/...: Flower only through the portal's permission check, reads only, a clear page when it is down."""

import httpx
import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client

pytestmark = pytest.mark.django_db

# Every kind of Flower path: pages, a worker page, static files, the API, Prometheus metrics, the health check.
FLOWER_PATHS = [
    "/ops/flower/",
    "/ops/flower/workers",
    "/ops/flower/tasks",
    "/ops/flower/broker",
    "/ops/flower/worker/w1@localhost",
    "/ops/flower/static/css/flower.css",
    "/ops/flower/api/workers",
    "/ops/flower/api/tasks",
    "/ops/flower/api/queues/length",
    "/ops/flower/metrics",
    "/ops/flower/healthcheck",
    "/ops/monitor/",
]


@pytest.mark.parametrize("path", FLOWER_PATHS)
def test_anonymous_is_sent_to_login_on_every_flower_path(client, flower_down, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


@pytest.mark.parametrize("path", FLOWER_PATHS)
@pytest.mark.parametrize("who", ["plain_staff", "operator", "analyst"])
def test_staff_without_ops_permission_get_403_on_every_flower_path(client, flower_down, request, who, path):
    client.force_login(request.getfixturevalue(who))

    assert client.get(path).status_code == 403


def test_signed_in_end_user_gets_403_not_flower(client, flower_down, django_user_model):
    client.force_login(django_user_model.objects.create_user("customer", password="x"))

    assert client.get("/ops/flower/api/workers").status_code == 403


def test_flower_down_shows_a_clear_message_not_a_502(client, ops, flower_down):
    client.force_login(ops)

    page = client.get("/ops/flower/")
    api = client.get("/ops/flower/api/workers")

    assert page.status_code == 503
    assert b"Flower is not reachable right now" in page.content
    assert b'id="flower-unavailable"' in page.content
    assert b"/ops/workers/" in page.content  # points to the page that works without Flower
    assert api.status_code == 503
    assert api.json()["detail"].startswith("Flower is not reachable right now")


def test_framed_flower_page_keeps_the_portal_navigation(client, ops, flower_down):
    client.force_login(ops)

    response = client.get("/ops/monitor/")

    assert response.status_code == 200
    assert b'<iframe id="flower-frame"' in response.content
    assert b'src="/ops/flower/"' in response.content
    assert b'id="nav-sidebar"' in response.content
    assert b'href="/ops/workers/"' in response.content
    assert response["X-Frame-Options"] == "DENY"  # the page itself is never framed by anyone


def test_cross_site_post_through_the_proxy_is_refused(ops, flower_down):
    client = Client(enforce_csrf_checks=True)
    client.force_login(ops)

    response = client.post("/ops/flower/api/worker/shutdown/w1@localhost", HTTP_ORIGIN="https://evil.example")

    assert response.status_code == 403
    assert b"CSRF" in response.content


def test_same_site_post_is_still_never_forwarded_to_flower(client, ops, flower_down):
    client.force_login(ops)

    response = client.post("/ops/flower/api/worker/shutdown/w1@localhost")

    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert "workers page" in response.json()["detail"]


@pytest.mark.parametrize(
    ("who", "method", "status"),
    [
        (None, "GET", 401),
        ("plain_staff", "GET", 403),
        ("operator", "GET", 403),
        ("ops", "GET", 204),
        ("ops", "POST", 403),
        ("superuser", "GET", 204),
    ],
)
def test_nginx_auth_request_answers_by_permission_and_method(client, request, who, method, status):
    if who:
        client.force_login(request.getfixturevalue(who))

    response = client.get("/ops/flower-auth", HTTP_X_ORIGINAL_METHOD=method)

    assert response.status_code == status


@pytest.mark.slow
def test_every_flower_path_is_served_to_ops_through_the_proxy_from_a_real_flower(client, ops, live_flower, live_worker):
    # Flower itself refuses anyone without its credentials, so the proxy is the only way in.
    assert httpx.get(f"{live_flower.url}/api/workers", timeout=5).status_code == 401
    client.force_login(ops)

    for path in FLOWER_PATHS:
        path = path.replace("w1@localhost", live_worker.hostname)  # a worker page Flower knows
        response = client.get(path)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert response.status_code == 200, (path, response.status_code, body[:300])

    assert b"body" in b"".join(client.get("/ops/flower/static/css/flower.css").streaming_content)
    assert client.get("/ops/flower/static/css/flower.css")["Content-Type"].startswith("text/css")
    assert b"flower_" in b"".join(client.get("/ops/flower/metrics").streaming_content)
    assert b"".join(client.get("/ops/flower/healthcheck").streaming_content) == b"OK"
    workers = client.get("/ops/flower/api/workers", {"refresh": "1"})
    assert live_worker.hostname in b"".join(workers.streaming_content).decode()
    workers_page = client.get("/ops/flower/workers")
    assert workers_page["X-Frame-Options"] == "SAMEORIGIN"  # the portal's Flower page may frame it
    page = b"".join(workers_page.streaming_content).decode()
    assert 'href="/ops/flower/static/' in page  # Flower's own links stay under the proxied prefix


@pytest.mark.slow
def test_real_flower_paths_are_refused_to_staff_without_permission_and_nothing_reaches_flower(
    client, operator, live_flower
):
    client.force_login(operator)

    for path in FLOWER_PATHS:
        assert client.get(path).status_code == 403, path
    assert LogEntry.objects.count() == 0
