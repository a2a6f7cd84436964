"""The capture middleware against what staff can plant and strangers can send (issue 12)."""

import dataclasses
import sys
import threading
import time

import pytest
from django.db import connection
from django.urls import reverse

from points import capture, matching
from points.models import Action
from tests.points.factories import ActionFactory, UserFactory

pytestmark = pytest.mark.django_db

BACKTRACKING = r"^/(a+)+$"  # nested quantifier: Python's re takes ~2^n steps on "/aaa...a!"
HOSTILE_PATH = "/" + "a" * 26 + "!"  # ~10 s with a backtracking engine here, microseconds with RE2
MARGIN_SECONDS = 1.0  # far above RE2's time for such a path, far below a backtracking engine's


@pytest.fixture(autouse=True)
def fresh_index():
    matching.index.invalidate()
    capture._broker_down_until = 0.0
    yield
    matching.index.invalidate()


def _spy_on_patterns() -> list[str]:
    """Wrap every compiled pattern of the loaded index so that each run is recorded; returns the record."""
    runs = []

    class Spy:
        def __init__(self, pattern):
            self.pattern, self.groupindex = pattern, pattern.groupindex

        def fullmatch(self, path):
            runs.append(path)
            return self.pattern.fullmatch(path)

    matching.index.match("GET", "/load/")
    matching.index._by_method = {
        method: [dataclasses.replace(a, pattern=Spy(a.pattern)) for a in actions]
        for method, actions in matching.index._by_method.items()
    }
    return runs


def test_a_backtracking_pattern_matches_in_linear_time(client):
    ActionFactory(method="GET", path_pattern=BACKTRACKING)
    client.force_login(UserFactory())
    assert client.get("/aaaa").status_code == 404  # loads the index and the session
    started = time.perf_counter()
    assert matching.index.match("GET", HOSTILE_PATH) == []
    assert time.perf_counter() - started < MARGIN_SECONDS
    started = time.perf_counter()
    assert client.get(HOSTILE_PATH).status_code == 404
    assert time.perf_counter() - started < MARGIN_SECONDS


def test_anonymous_requests_run_no_staff_pattern(client):
    ActionFactory(method="GET", path_pattern=BACKTRACKING)
    runs = _spy_on_patterns()
    assert client.get("/aaaa").status_code == 404
    assert client.get(HOSTILE_PATH).status_code == 404
    assert runs == []


def test_a_signed_in_request_does_run_the_patterns(client):
    ActionFactory(method="GET", path_pattern=BACKTRACKING)
    runs = _spy_on_patterns()
    client.force_login(UserFactory())
    client.get("/aaaa")
    assert runs == ["/aaaa"]


def test_an_overlong_path_is_never_matched(client):
    ActionFactory(method="GET", path_pattern=r"^/long/a+/$")
    long_path = "/long/" + "a" * 5000 + "/"
    assert matching.index.match("GET", "/long/aaa/")
    assert matching.index.match("GET", long_path) == []
    runs = _spy_on_patterns()
    client.force_login(UserFactory())
    client.get(long_path)
    assert runs == []


@pytest.mark.parametrize(
    "pattern",
    [
        r"^/api/posts/(?P<business_id>\d+)/(?=publish)",  # look-ahead
        r"^/api/(a)\1/$",  # back-reference
        r"^/api/(a{100}){100}$",  # a repetition too large to compile
    ],
)
def test_a_pattern_the_engine_cannot_take_is_refused_with_a_form_error(client, operator, pattern):
    client.force_login(operator)
    response = client.post(
        reverse("admin:points_action_add"),
        {"code": "bad", "name": "Bad", "method": "POST", "path_pattern": pattern, "status": "active"},
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "linear-time matching" in errors["path_pattern"][0]
    assert not Action.all_objects.filter(code="bad").exists()


def test_named_groups_still_carry_the_business_id(client, operator):
    client.force_login(operator)
    response = client.post(
        reverse("admin:points_action_add"),
        {
            "code": "like",
            "name": "Like",
            "method": "POST",
            "path_pattern": r"^/api/posts/(?P<business_id>\d+)/like/$",
            "status": "active",
        },
    )
    assert response.status_code == 302
    found = matching.index.match("POST", "/api/posts/81/like/")
    assert [(action.code, business_id) for action, business_id in found] == [("like", "81")]


def test_the_url_tester_uses_the_same_engine(client, operator):
    client.force_login(operator)
    url = reverse("admin:points_action_test_url")
    refused = client.get(url, {"method": "GET", "path": "/api/aa/", "pattern": r"^/api/(a)\1/$"}).json()
    assert refused["pattern"]["valid"] is False
    started = time.perf_counter()
    hostile = client.get(url, {"method": "GET", "path": HOSTILE_PATH, "pattern": BACKTRACKING}).json()
    assert hostile["pattern"] == {"valid": True, "matches": False, "business_id": None}
    assert time.perf_counter() - started < MARGIN_SECONDS


@pytest.mark.django_db(transaction=True)
def test_an_invalidation_by_another_thread_never_breaks_a_request(redis_client, monkeypatch):
    """gunicorn runs 4 threads per worker: one may invalidate the index while another is matching."""
    ActionFactory(method="POST", path_pattern=r"^/api/x/(?P<business_id>\d+)/$")
    monkeypatch.setattr(matching, "REFRESH_SECONDS", 0.0)  # every match looks again, as after an edit
    errors, done = [], threading.Event()
    matches_each = 300

    def reader():
        try:
            for _ in range(matches_each):
                if errors:
                    return
                assert [business_id for _a, business_id in matching.index.match("POST", "/api/x/7/")] == ["7"]
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    def invalidator():
        while not done.is_set():
            matching.index.invalidate()

    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads interleave at almost every bytecode, as under load
    try:
        readers = [threading.Thread(target=reader) for _ in range(3)]
        flipper = threading.Thread(target=invalidator)
        flipper.start()
        for thread in readers:
            thread.start()
        for thread in readers:
            thread.join()
        done.set()
        flipper.join()
    finally:
        sys.setswitchinterval(switch_interval)
    assert errors == []
