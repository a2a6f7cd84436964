"""The one publish helper: after the commit, never raising, one warning line, an honest outcome."""

import logging

import pytest

from backoffice.publishing import task_publish, task_publish_on_commit
from backoffice.tasks import ping_task

pytestmark = pytest.mark.django_db


def broker_down(*args, **kwargs):
    raise ConnectionRefusedError(111, "Connection refused")


def test_publishes_only_when_the_transaction_commits(on_commit, monkeypatch):
    sent = []
    monkeypatch.setattr(ping_task, "apply_async", lambda **options: sent.append(options))

    with on_commit(execute=True):
        publication = task_publish_on_commit(ping_task, args=["hi"], task_id="t-1")
        assert (sent, publication.sent) == ([], None)

    assert sent == [{"args": ["hi"], "task_id": "t-1"}]
    assert publication.sent is True


def test_a_refused_publish_logs_one_line_without_arguments_and_calls_on_failure(on_commit, monkeypatch, caplog):
    monkeypatch.setattr(ping_task, "apply_async", broker_down)
    failures = []

    with on_commit(execute=True), caplog.at_level(logging.WARNING):
        publication = task_publish_on_commit(
            ping_task, kwargs={"message": "+15551234567"}, on_failure=lambda: failures.append(1)
        )

    assert (publication.sent, failures) == (False, [1])
    [record] = caplog.records
    assert record.getMessage() == "backoffice.ping not queued (ConnectionRefusedError: [Errno 111] Connection refused)"
    assert "+1555" not in caplog.text


def test_publishing_now_reports_the_outcome(monkeypatch):
    monkeypatch.setattr(ping_task, "apply_async", broker_down)
    assert task_publish(ping_task) is False
