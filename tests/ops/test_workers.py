"""The native workers page and its control actions: permission, CSRF, audit."""

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.test import Client

from backoffice.auditing import audit_message
from backoffice.ops import services

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake_control(monkeypatch):
    """Celery's control API replaced by a recorder that answers like one worker would."""
    calls = []

    def recorder(name):
        def call(*args, **kwargs):
            calls.append((name, args, kwargs))
            return [{kwargs["destination"][0] if kwargs.get("destination") else "w1@host": {"ok": f"{name} done"}}]

        return call

    for name in ("pool_grow", "pool_shrink", "shutdown", "revoke", "rate_limit"):
        monkeypatch.setattr(services.celery_app.control, name, recorder(name))
    return calls


def test_workers_page_with_no_worker_says_so(client, ops, redis_client):
    client.force_login(ops)

    response = client.get("/ops/workers/")

    assert response.status_code == 200
    assert b'id="no-workers"' in response.content
    assert b'<td class="queue-length">0</td>' in response.content
    assert b'name="action" value="shutdown"' not in response.content  # nothing to control


def test_control_action_runs_and_is_audited(client, ops, fake_control, redis_client):
    client.force_login(ops)

    response = client.post("/ops/workers/", {"action": "pool_grow", "worker": "w1@host"})

    assert response.status_code == 302
    assert fake_control == [("pool_grow", (1,), {"destination": ["w1@host"], "reply": True, "timeout": 2.0})]
    entry = LogEntry.objects.get()
    assert (entry.user, entry.action_flag, entry.object_id) == (ops, CHANGE, "w1@host")
    assert entry.content_type.app_label == "portal_ops"
    assert audit_message(entry) == "pool grow by 1 on w1@host: w1@host: pool_grow done"


def test_revoke_and_rate_limit_are_audited_with_what_was_asked(client, ops, fake_control, redis_client):
    client.force_login(ops)

    client.post("/ops/workers/", {"action": "revoke", "task_id": "abc-123", "terminate": "on"})
    client.post("/ops/workers/", {"action": "rate_limit", "task_name": "points.apply", "rate": "10/m"})

    assert [call[0] for call in fake_control] == ["revoke", "rate_limit"]
    assert fake_control[0][1] == ("abc-123",) and fake_control[0][2]["terminate"] is True
    assert fake_control[1][1] == ("points.apply", "10/m")
    messages = [(e.object_id, audit_message(e)) for e in LogEntry.objects.order_by("id")]
    assert messages == [
        ("*", "revoke abc-123 (terminate): w1@host: revoke done"),
        ("*", "rate limit points.apply = 10/m: w1@host: rate_limit done"),
    ]


def test_cross_site_post_to_a_control_action_is_refused(ops, fake_control):
    client = Client(enforce_csrf_checks=True)
    client.force_login(ops)

    response = client.post(
        "/ops/workers/", {"action": "shutdown", "worker": "w1@host"}, HTTP_ORIGIN="https://evil.example"
    )

    assert response.status_code == 403
    assert fake_control == []
    assert LogEntry.objects.count() == 0


def test_control_with_a_valid_csrf_token_passes(ops, fake_control, redis_client):
    client = Client(enforce_csrf_checks=True)
    client.force_login(ops)
    page = client.get("/ops/workers/")
    token = page.cookies["csrftoken"].value

    response = client.post("/ops/workers/", {"action": "shutdown", "worker": "w1@host", "csrfmiddlewaretoken": token})

    assert response.status_code == 302
    assert [call[0] for call in fake_control] == ["shutdown"]


def test_watchers_without_control_permission_cannot_control(client, ops, fake_control, redis_client):
    from django.contrib.auth.models import Permission

    ops.groups.clear()
    ops.user_permissions.add(Permission.objects.get(codename="view_ops"))
    client.force_login(ops)

    assert client.get("/ops/workers/").status_code == 200
    response = client.post("/ops/workers/", {"action": "shutdown", "worker": "w1@host"})

    assert response.status_code == 403
    assert fake_control == []
    assert LogEntry.objects.count() == 0


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"action": "explode", "worker": "w1@host"}, "action"),
        ({"action": "pool_grow"}, "worker"),
        ({"action": "revoke"}, "task_id"),
        ({"action": "rate_limit", "task_name": "x", "rate": "fast"}, "rate"),
    ],
)
def test_bad_control_input_is_a_form_error(client, ops, fake_control, redis_client, data, field):
    client.force_login(ops)

    response = client.post("/ops/workers/", data)

    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert fake_control == []
    assert LogEntry.objects.count() == 0


def test_no_worker_answering_is_a_message_not_a_500(client, ops, monkeypatch, redis_client):
    monkeypatch.setattr(services.celery_app.control, "pool_grow", lambda *a, **k: [])
    client.force_login(ops)

    response = client.post("/ops/workers/", {"action": "pool_grow", "worker": "gone@host"}, follow=True)

    assert response.status_code == 200
    assert "No worker answered: pool grow by 1 on gone@host" in response.content.decode()
    assert LogEntry.objects.count() == 0


@pytest.mark.slow
def test_workers_page_lists_a_real_worker_with_its_queues_and_pool(client, ops, live_worker):
    client.force_login(ops)

    response = client.get("/ops/workers/")

    assert response.status_code == 200
    (worker,) = response.context["workers"]
    assert worker["name"] == live_worker.hostname
    assert worker["queues"] == ["default", "exports", "orders", "points", "reports"]  # live_worker: every queue
    assert worker["pool_size"] == 2
    assert worker["active"] == [] and worker["reserved"] == []
