"""The audit view: every staff action from the admin log, with who, what and when, and filters."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from backoffice.accounts.roles import ANALYSTS, OPS
from backoffice.ops.models import Worker
from tests.accounts.staff import staff_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def entries():
    ops = staff_user("ops", role=OPS)
    boss = staff_user("boss", superuser=True)
    group_type = ContentType.objects.get_for_model(Group)
    worker_type = ContentType.objects.get_for_model(Worker, for_concrete_model=False)
    now = timezone.now()
    lines = [  # who, what type, id, text, flag, message
        (boss, group_type, "1", "Analysts", ADDITION, "[]"),
        (ops, worker_type, "w1@host", "w1@host", CHANGE, "pool grow by 1 on w1@host: ok"),
        (boss, group_type, "2", "Old group", DELETION, ""),
    ]
    fields = ("user", "content_type", "object_id", "object_repr", "action_flag", "change_message")
    made = [LogEntry.objects.create(**dict(zip(fields, line, strict=True))) for line in lines]
    LogEntry.objects.filter(pk=made[2].pk).update(action_time=now - timedelta(days=3))
    return {"ops": ops, "boss": boss, "group_type": group_type}


def _rows(response):
    return [(e.user.username, e.action_flag, e.object_repr) for e in response.context["page"]]


def test_lists_who_what_when_newest_first(client, entries):
    client.force_login(entries["ops"])

    response = client.get("/admin/audit/")

    assert response.status_code == 200
    assert _rows(response) == [
        ("ops", CHANGE, "w1@host"),
        ("boss", ADDITION, "Analysts"),
        ("boss", DELETION, "Old group"),
    ]
    body = response.content.decode()
    assert '<td class="who">ops</td>' in body
    assert "pool grow by 1 on w1@host: ok" in body
    assert "Celery worker: w1@host" in body


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"user": "boss"}, ["Analysts", "Old group"]),
        ({"action": str(DELETION)}, ["Old group"]),
        ({"q": "pool grow"}, ["w1@host"]),
        ({"since": str(timezone.localdate() - timedelta(days=1))}, ["w1@host", "Analysts"]),
        ({"until": str(timezone.localdate() - timedelta(days=2))}, ["Old group"]),
    ],
)
def test_filters(client, entries, query, expected):
    client.force_login(entries["ops"])

    response = client.get("/admin/audit/", query)

    assert response.status_code == 200
    assert [row[2] for row in _rows(response)] == expected


def test_filter_by_what(client, entries):
    client.force_login(entries["ops"])

    response = client.get("/admin/audit/", {"content_type": entries["group_type"].pk})

    assert [row[2] for row in _rows(response)] == ["Analysts", "Old group"]


@pytest.mark.parametrize(
    "query",
    [{"since": "yesterday"}, {"action": "9"}, {"user": "nobody"}, {"since": "2026-05-02", "until": "2026-05-01"}],
)
def test_bad_filters_are_form_errors_not_500(client, entries, query):
    client.force_login(entries["ops"])

    response = client.get("/admin/audit/", query)

    assert response.status_code == 400
    assert response.context["form"].errors
    assert len(_rows(response)) == 3  # unfiltered, nothing hidden by a half-applied filter


def test_refused_to_roles_without_the_log_permission(client, entries):
    client.force_login(staff_user("analyst", role=ANALYSTS))

    assert client.get("/admin/audit/").status_code == 403


def test_control_action_appears_in_the_audit_view(client, monkeypatch, redis_client):
    from backoffice.ops import services

    monkeypatch.setattr(services.celery_app.control, "revoke", lambda *a, **k: [{"w1@host": {"ok": "revoked"}}])
    ops = staff_user("ops", role=OPS)
    client.force_login(ops)
    client.post("/ops/workers/", {"action": "revoke", "task_id": "t-42"})

    response = client.get("/admin/audit/", {"q": "t-42"})

    assert _rows(response) == [("ops", CHANGE, "all workers")]
    assert "revoke t-42: w1@host: revoked" in response.content.decode()
