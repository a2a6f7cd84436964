"""Tasks as functions; enqueueing through captured on-commit callbacks."""

import threading
from unittest import mock

import pytest

from points import capture, tasks
from points.models import LedgerEntry, PendingEvent
from tests.points.factories import RuleFactory, UserFactory
from tests.points.helpers import balance, local

pytestmark = pytest.mark.django_db


def test_capture_publishes_one_task_after_commit_and_not_while_one_is_on_its_way(on_commit, redis_client):
    rule = RuleFactory(period="none")
    user = UserFactory()
    with mock.patch.object(tasks.events_process_batch_task, "apply_async") as publish:
        with on_commit(execute=True):
            capture.event_capture(user_id=user.pk, action_id=rule.action_id, occurred_at=local(2026, 3, 1))
        with on_commit(execute=True):
            capture.event_capture(user_id=user.pk, action_id=rule.action_id, occurred_at=local(2026, 3, 1))
    assert publish.call_count == 1
    assert redis_client.get(capture.KICK_KEY) == b"1"
    assert PendingEvent.objects.count() == 2


def test_a_capture_wakes_a_worker_from_a_thread_of_its_own(on_commit, redis_client, monkeypatch):
    """The request thread only sets a flag; the publish happens on the waker thread."""
    monkeypatch.setattr(capture, "WAKE_IN_BACKGROUND", True)
    rule = RuleFactory(period="none")
    published = threading.Event()
    publishers = []

    def publish(*args, **kwargs):
        publishers.append(threading.current_thread().name)
        published.set()

    with mock.patch.object(tasks.events_process_batch_task, "apply_async", side_effect=publish):
        with on_commit(execute=True):
            capture.event_capture(user_id=UserFactory().pk, action_id=rule.action_id)
        assert published.wait(10)
    assert publishers == ["points-waker"]
    assert redis_client.get(capture.KICK_KEY) == b"1"


def test_the_batch_task_clears_the_kick_applies_and_requeues_while_a_backlog_remains(redis_client):
    rule = RuleFactory(period="none", points=2)
    user = UserFactory()
    for minute in range(3):
        capture.event_capture(user_id=user.pk, action_id=rule.action_id, occurred_at=local(2026, 3, 1, 8, minute))
    redis_client.set(capture.KICK_KEY, "1")
    with mock.patch.object(tasks.events_process_batch_task, "apply_async") as publish:
        assert tasks.events_process_batch_task(limit=2) == 2
        publish.assert_called_once_with(kwargs={"limit": 2})
        assert redis_client.get(capture.KICK_KEY) is None
        assert tasks.events_process_batch_task(limit=2) == 1
        assert publish.call_count == 1  # the backlog is gone: no further task
    assert balance(user) == 6


def test_relay_publishes_enough_batches_for_old_events_only(redis_client):
    rule = RuleFactory(period="none")
    user = UserFactory()
    old = [
        PendingEvent(
            event_id=f"00000000-0000-0000-0000-{i:012d}",
            user_id=user.pk,
            action_id=rule.action_id,
            occurred_at=local(2026, 3, 1),
        )
        for i in range(3)
    ]
    PendingEvent.objects.bulk_create(old)
    PendingEvent.objects.update(created_at=local(2026, 3, 1))
    capture.event_capture(user_id=user.pk, action_id=rule.action_id)  # fresh: its own task is on its way
    with mock.patch.object(tasks.events_process_batch_task, "apply_async") as publish:
        assert capture.outbox_relay(older_than_seconds=2, max_tasks=50) == 1
        assert tasks.outbox_relay_task() == 1
    assert publish.call_count == 2
    assert capture.outbox_backlog() == 4
    assert capture.outbox_backlog(older_than_seconds=2) == 3
    assert LedgerEntry.objects.count() == 0


def test_relay_with_nothing_left_publishes_nothing():
    with mock.patch.object(tasks.events_process_batch_task, "apply_async") as publish:
        assert tasks.outbox_relay_task() == 0
    publish.assert_not_called()


def test_a_failing_publish_keeps_the_event_and_opens_the_breaker(on_commit, redis_client):
    rule = RuleFactory(period="none")
    user = UserFactory()
    down = mock.patch.object(tasks.events_process_batch_task, "apply_async", side_effect=OSError("down"))
    with down, on_commit(execute=True):
        capture.event_capture(user_id=user.pk, action_id=rule.action_id)
    assert PendingEvent.objects.count() == 1
    assert not capture.broker_available()
    with mock.patch.object(tasks.events_process_batch_task, "apply_async") as publish:
        assert capture.events_kick() is False  # breaker open: no broker call at all
    publish.assert_not_called()
