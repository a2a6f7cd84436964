import datetime as dt
import json

import pytest
import time_machine
from django.core.checks import run_checks
from django.test import Client

from points import capture, matching
from points.models import CheckIn, PendingEvent
from tests.points.factories import ActionFactory, UserFactory

pytestmark = pytest.mark.django_db

NOON_SHANGHAI = dt.datetime(2026, 3, 1, 4, 0, tzinfo=dt.UTC)


@pytest.fixture
def user_client(client):
    user = UserFactory()
    client.force_login(user)
    client.user = user
    return client


def test_a_matching_successful_request_writes_one_outbox_row(user_client, checkin_action, settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    with time_machine.travel(NOON_SHANGHAI, tick=False):
        response = user_client.post("/api/points/checkin/", HTTP_CF_IPCOUNTRY="CN", HTTP_ACCEPT_LANGUAGE="zh-hans")

    assert response.status_code == 200
    assert response.json()["code"] == 0
    event = PendingEvent.objects.get()
    assert (event.user_id, event.action_id, event.business_id) == (user_client.user.pk, checkin_action.pk, "")
    assert (event.country, event.language, event.location) == ("CN", "zh-hans", "/api/points/checkin/")
    assert event.occurred_at == NOON_SHANGHAI
    assert CheckIn.objects.get().day == dt.date(2026, 3, 1)


def test_the_json_success_condition_ignores_a_second_checkin_the_same_day(user_client, checkin_action):
    user_client.post("/api/points/checkin/")
    response = user_client.post("/api/points/checkin/")
    assert response.json()["code"] == 1
    assert PendingEvent.objects.count() == 1


def test_anonymous_requests_capture_nothing(client, checkin_action):
    response = client.post("/api/points/checkin/")
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    assert PendingEvent.objects.count() == 0


def test_a_failed_response_captures_nothing(user_client):
    ActionFactory(method="GET", path_pattern=r"^/api/points/me/$")
    ActionFactory(method="GET", path_pattern=r"^/no/such/(?P<business_id>\d+)/$")
    assert user_client.get("/no/such/5/").status_code == 404
    assert PendingEvent.objects.count() == 0
    assert user_client.get("/api/points/me/").status_code == 200
    assert PendingEvent.objects.count() == 1


def test_the_method_must_match(user_client, checkin_action):
    assert user_client.get("/api/points/checkin/").status_code == 405
    assert PendingEvent.objects.count() == 0


def test_csrf_still_protects_the_checkin(checkin_action):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(UserFactory())
    assert csrf_client.post("/api/points/checkin/").status_code == 403
    token = csrf_client.get("/api/points/me/").cookies["csrftoken"].value
    response = csrf_client.post("/api/points/checkin/", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200
    assert CheckIn.objects.count() == 1
    assert PendingEvent.objects.count() == 1


def test_a_non_matching_request_makes_no_query(user_client, checkin_action, django_assert_num_queries):
    user_client.post("/api/points/checkin/")  # compiles the actions once
    anonymous = Client()
    with django_assert_num_queries(0):
        assert anonymous.get("/static-nothing/here").status_code == 404


def test_the_business_id_comes_from_the_named_group():
    ActionFactory(code="like", method="POST", path_pattern=r"^/api/posts/(?P<business_id>\d+)/like/$")
    found = matching.index.match("POST", "/api/posts/81/like/")
    assert [(action.code, business_id) for action, business_id in found] == [("like", "81")]
    assert matching.index.match("POST", "/api/posts/81/like/extra") == []
    assert matching.index.match("GET", "/api/posts/81/like/") == []


def test_success_field_can_be_nested_and_typed():
    action = matching.compile_action(
        ActionFactory.build(pk=1, path_pattern="^/x$", success_field="result.ok", success_value="true")
    )

    class Response:
        status_code = 200
        streaming = False

        def __init__(self, body):
            self.content = json.dumps(body).encode()

    assert action.succeeded(Response({"result": {"ok": True}}))
    assert not action.succeeded(Response({"result": {"ok": False}}))
    assert not action.succeeded(Response({"result": "nope"}))
    assert not action.succeeded(Response([1, 2]))


def test_another_process_edit_is_picked_up_through_the_version(user_client, checkin_action, redis_client):
    assert matching.index.match("POST", "/api/points/checkin/")
    compiled_here = matching.index._by_method
    checkin_action.status = "retired"
    checkin_action.save()  # bumps the version in Redis
    matching.index._by_method = compiled_here  # another process: it still has the old compiled actions
    assert matching.index.match("POST", "/api/points/checkin/")  # until its next look at the version
    matching.index._checked_at = 0.0  # as if REFRESH_SECONDS had passed
    assert matching.index.match("POST", "/api/points/checkin/") == []
    assert redis_client.get(matching.VERSION_KEY) is not None


def test_a_dead_broker_costs_the_request_nothing_and_keeps_the_event(user_client, checkin_action, monkeypatch):
    import redis

    from backoffice.embedded_redis import free_port

    dead = redis.Redis(port=free_port(), socket_timeout=0.05, socket_connect_timeout=0.05)
    monkeypatch.setattr(capture, "shared_redis_client", lambda timeout: dead)
    monkeypatch.setattr(matching.index, "_checked_at", 0.0)

    response = user_client.post("/api/points/checkin/")

    assert response.status_code == 200
    assert PendingEvent.objects.count() == 1
    assert not capture.broker_available()  # the breaker is open; the relay will publish


def test_system_check_refuses_the_middleware_before_authentication(settings):
    stack = list(settings.MIDDLEWARE)
    stack.remove("points.middleware.PointsCaptureMiddleware")
    stack.insert(0, "points.middleware.PointsCaptureMiddleware")
    settings.MIDDLEWARE = stack
    assert [e.id for e in run_checks() if e.id.startswith("points.")] == ["points.E001"]


def test_system_check_passes_with_the_shipped_settings():
    assert [e.id for e in run_checks() if e.id.startswith("points.")] == []
