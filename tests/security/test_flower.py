"""The Flower proxy: bad paths are a 4xx that never reach Flower, dot segments never leave the prefix, and
no proxied answer may be kept by a cache."""

import httpx
import pytest
from django.test import Client

from backoffice.ops import flower
from tests.ops.conftest import FLOWER_AUTH, ops_user  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake_flower(settings, monkeypatch):
    """Flower replaced by an in-process transport that records every URL the proxy asks for."""
    settings.FLOWER_URL = "http://flower.test/ops/flower"
    settings.FLOWER_BASIC_AUTH = FLOWER_AUTH
    seen = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        headers = {"content-type": "text/html", "cache-control": "public, max-age=3600", "expires": "never"}
        return httpx.Response(200, headers=headers, content=b"flower page")

    monkeypatch.setattr(flower, "_client", httpx.Client(transport=httpx.MockTransport(answer)))
    return seen


CONTROL_PATHS = ["/ops/flower/%00", "/ops/flower/api/tasks%00x", "/ops/flower/a%09b", "/ops/flower/%7f"]


@pytest.mark.parametrize("path", CONTROL_PATHS)
def test_control_characters_in_the_path_are_a_400_that_never_reach_flower(client, ops_user, fake_flower, path):  # noqa: F811
    client.force_login(ops_user)

    response = client.get(path)

    assert response.status_code == 400
    assert response.json() == {"detail": "This path is not part of Flower."}
    assert fake_flower == []


def test_a_line_break_in_the_path_matches_no_route(client, ops_user, fake_flower):  # noqa: F811
    client.force_login(ops_user)

    assert client.get("/ops/flower/a%0d%0aSet-Cookie:x").status_code == 404  # Django's `path:` stops at \n
    assert fake_flower == []


def test_nul_byte_with_debug_on_shows_no_credential(ops_user, fake_flower, settings):  # noqa: F811
    settings.DEBUG = True
    client = Client(raise_request_exception=False)
    client.force_login(ops_user)

    response = client.get("/ops/flower/%00")

    assert response.status_code == 400
    assert FLOWER_AUTH.split(":")[1].encode() not in response.content


@pytest.mark.parametrize(
    "path",
    [
        "/ops/flower/%2e%2e/admin",
        "/ops/flower/%2E%2E/%2E%2E/etc/passwd",
        "/ops/flower/api/%2e%2e/%2e%2e/x",
        "/ops/flower/..%2f..%2fx",
        "/ops/flower/..%5c..%5cx",
    ],
)
def test_dot_segments_leaving_the_prefix_are_refused(client, ops_user, fake_flower, path):  # noqa: F811
    client.force_login(ops_user)

    response = client.get(path)

    assert response.status_code == 400
    assert fake_flower == []


@pytest.mark.parametrize(
    ("path", "upstream"),
    [
        ("/ops/flower/api/%2e%2e/workers", "/ops/flower/workers"),
        ("/ops/flower/./tasks/", "/ops/flower/tasks/"),
        ("/ops/flower/worker/w1@host", "/ops/flower/worker/w1@host"),
        ("/ops/flower/task/a%3Fb%23c", "/ops/flower/task/a%3Fb%23c"),  # a decoded ? or # stays in the path
        ("/ops/flower/", "/ops/flower/"),
    ],
)
def test_paths_inside_the_prefix_reach_flower_normalised(client, ops_user, fake_flower, path, upstream):  # noqa: F811
    client.force_login(ops_user)

    response = client.get(path)

    assert response.status_code == 200
    assert fake_flower == [upstream]


@pytest.mark.parametrize("path", ["/ops/flower/", "/ops/flower/api/tasks", "/ops/flower/static/css/flower.css"])
def test_proxied_answers_are_never_stored_by_a_cache(client, ops_user, fake_flower, path):  # noqa: F811
    client.force_login(ops_user)

    response = client.get(path)

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert "Expires" not in response


def test_errors_from_the_proxy_are_not_stored_either(client, ops_user, fake_flower):  # noqa: F811
    client.force_login(ops_user)

    assert client.get("/ops/flower/%00")["Cache-Control"] == "no-store"
    assert client.post("/ops/flower/api/tasks")["Cache-Control"] == "no-store"
