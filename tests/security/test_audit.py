"""Revoking or terminating a task is audited even when the portal has no record of the task id."""

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.urls import reverse

from backoffice.auditing import audit_message
from backoffice.celery import app

pytestmark = pytest.mark.django_db

UNKNOWN_ID = "0b7d7c1e-2f6e-4d0c-9a53-unknown-to-the-portal"


@pytest.mark.parametrize(("terminate", "message"), [("0", "Revoked task"), ("1", "Terminated task")])
def test_revoking_a_task_id_the_portal_never_saw_is_logged(client, ops, monkeypatch, terminate, message):
    sent = []
    monkeypatch.setattr(app.control, "revoke", lambda task_id, **kw: sent.append((task_id, kw["terminate"])))
    client.force_login(ops)

    response = client.post(reverse("console:revoke", kwargs={"task_id": UNKNOWN_ID}), {"terminate": terminate})

    assert response.status_code == 302
    assert sent == [(UNKNOWN_ID, terminate == "1")]
    entry = LogEntry.objects.get()
    assert entry.user == ops
    assert entry.action_flag == CHANGE
    assert entry.object_id == UNKNOWN_ID
    assert entry.object_repr == f"unknown task [{UNKNOWN_ID}]"
    assert audit_message(entry) == f"{message} {UNKNOWN_ID}"


def test_a_revoke_the_broker_refused_is_not_logged(client, ops, monkeypatch):
    from kombu.exceptions import OperationalError

    def refuse(task_id, **kw):
        raise OperationalError("broker down")

    monkeypatch.setattr(app.control, "revoke", refuse)
    client.force_login(ops)

    client.post(reverse("console:revoke", kwargs={"task_id": UNKNOWN_ID}), {"terminate": "1"})

    assert not LogEntry.objects.exists()
