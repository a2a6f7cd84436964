"""Alert evaluation: fire once, remind at a bounded rate, recover once; silence; defaults; delivery."""

import json
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from celery import states
from django.contrib.admin.models import LogEntry
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_celery_results.models import TaskResult

from backoffice.alerts import services
from backoffice.alerts.defaults import DEFAULT_RULES
from backoffice.alerts.models import AlertEvent, AlertNotification, AlertRule
from backoffice.alerts.selectors import Figures
from backoffice.alerts.services import alert_rule_silence, alert_rules_install_defaults, alerts_evaluate
from backoffice.auditing import audit_message
from backoffice.exports.models import ExportJob
from orders.models import Order
from points.models import PendingEvent
from tests.alerts.factories import AlertRuleFactory
from tests.orders.factories import UserFactory

pytestmark = pytest.mark.django_db

Kind = AlertRule.Kind


def fail_tasks(count: int, *, at, name: str = "orders.fulfil", status: str = states.FAILURE) -> None:
    """`count` results of the task finished at `at` (date_done is auto_now: set after the insert)."""
    ids = [str(uuid.uuid4()) for _ in range(count)]
    TaskResult.objects.bulk_create(TaskResult(task_id=task_id, task_name=name, status=status) for task_id in ids)
    TaskResult.objects.filter(task_id__in=ids).update(date_done=at)


def deliver_all(callbacks) -> None:
    """Run what the evaluation published after commit, as the worker would: the delivery service per id."""
    for notification in AlertNotification.objects.filter(status=AlertNotification.Status.QUEUED):
        services.alert_notification_deliver(notification_id=notification.pk)
    callbacks.clear()


def subjects() -> list[str]:
    return [message.subject for message in mail.outbox]


def test_a_rule_fires_once_reminds_at_most_n_an_hour_and_recovers_once(django_capture_on_commit_callbacks):
    rule = AlertRuleFactory(name="fulfil failing", task_name="orders.fulfil", threshold=3, reminders_per_hour=2)
    now = timezone.now()
    fail_tasks(3, at=now - timedelta(seconds=10))
    fail_tasks(5, at=now - timedelta(seconds=10), name="other.task")  # another task's failures do not count

    with django_capture_on_commit_callbacks() as callbacks:
        assert alerts_evaluate(now=now).fired == 1
    assert len(callbacks) == 1  # one email, published after commit
    deliver_all(callbacks)
    assert subjects() == ["[Backoffice alert] FIRING: fulfil failing"]

    # Still firing: at most 2 reminders an hour, i.e. one per 30 minutes, however often it is evaluated.
    for minutes in (1, 10, 29):
        fail_tasks(3, at=now + timedelta(minutes=minutes))
        with django_capture_on_commit_callbacks() as callbacks:
            alerts_evaluate(now=now + timedelta(minutes=minutes, seconds=1))
        assert callbacks == []
    fail_tasks(3, at=now + timedelta(minutes=31))
    with django_capture_on_commit_callbacks() as callbacks:
        assert alerts_evaluate(now=now + timedelta(minutes=31, seconds=1)).reminded == 1
    deliver_all(callbacks)
    assert subjects()[-1] == "[Backoffice alert] STILL FIRING: fulfil failing"

    # The failures leave the window: one recovery message, then silence.
    later = now + timedelta(hours=2)
    with django_capture_on_commit_callbacks() as callbacks:
        assert alerts_evaluate(now=later).resolved == 1
    deliver_all(callbacks)
    with django_capture_on_commit_callbacks() as callbacks:
        assert alerts_evaluate(now=later + timedelta(seconds=30)).resolved == 0
    assert callbacks == []
    assert subjects() == [
        "[Backoffice alert] FIRING: fulfil failing",
        "[Backoffice alert] STILL FIRING: fulfil failing",
        "[Backoffice alert] RESOLVED: fulfil failing",
    ]
    event = AlertEvent.objects.get(rule=rule)
    assert (event.fired_at, event.resolved_at, event.value, event.peak_value) == (
        now,
        later,
        3.0,
        6.0,
    )  # two bursts in one window
    assert list(event.notifications.values_list("reason", "status", "recipient")) == [
        ("resolved", "sent", "oncall@example.com"),
        ("reminder", "sent", "oncall@example.com"),
        ("firing", "sent", "oncall@example.com"),
    ]
    rule.refresh_from_db()
    assert rule.firing_since is None and rule.last_value == 0.0


def test_a_second_evaluation_of_the_same_state_sends_nothing(django_capture_on_commit_callbacks):
    AlertRuleFactory(threshold=1, reminders_per_hour=0)
    now = timezone.now()
    fail_tasks(1, at=now)
    with django_capture_on_commit_callbacks() as callbacks:
        alerts_evaluate(now=now)
        alerts_evaluate(now=now + timedelta(seconds=1))
        alerts_evaluate(now=now + timedelta(minutes=4))  # still firing; no reminders wanted
    assert len(callbacks) == 1
    assert AlertEvent.objects.count() == 1


def test_a_silenced_rule_sends_nothing_and_who_silenced_it_and_why_is_audited(django_capture_on_commit_callbacks, ops):
    rule = AlertRuleFactory(threshold=1)
    now = timezone.now()
    until = alert_rule_silence(rule=rule, user=ops, minutes=60, reason="deploying the fix", now=now)
    assert until == now + timedelta(hours=1)
    fail_tasks(2, at=now)
    with django_capture_on_commit_callbacks() as callbacks:
        assert alerts_evaluate(now=now + timedelta(seconds=1)).fired == 1
        assert alerts_evaluate(now=now + timedelta(minutes=4)).reminded == 0
        assert alerts_evaluate(now=now + timedelta(minutes=50)).resolved == 1
    assert callbacks == []
    assert AlertNotification.objects.count() == 0
    entry = LogEntry.objects.get(object_id=str(rule.pk))
    assert entry.user == ops
    assert audit_message(entry) == f"Silenced until {until.isoformat(timespec='seconds')}: deploying the fix"


@pytest.mark.parametrize(("minutes", "reason"), [(60, "  "), (0, "why"), (60 * 24 * 8, "why")])
def test_a_silence_without_a_reason_or_beyond_a_week_is_refused(ops, minutes, reason):
    rule = AlertRuleFactory()
    with pytest.raises(ValidationError):
        alert_rule_silence(rule=rule, user=ops, minutes=minutes, reason=reason)
    rule.refresh_from_db()
    assert rule.silenced_until is None
    assert not LogEntry.objects.exists()


def test_default_rules_are_created_once_and_never_overwritten():
    assert alert_rules_install_defaults()["created"] == [rule["name"] for rule in DEFAULT_RULES]
    AlertRule.objects.filter(name="Queue length").update(threshold=5, is_enabled=False)
    report = alert_rules_install_defaults()
    assert report["created"] == [] and len(report["kept"]) == len(DEFAULT_RULES)
    assert AlertRule.objects.filter(name="Queue length", threshold=5, is_enabled=False).exists()
    assert {rule.kind for rule in AlertRule.objects.all()} == set(Kind.values)


def test_failure_rate_needs_enough_finished_tasks():
    rule = AlertRuleFactory(kind=Kind.TASK_FAILURE_RATE, threshold=0.5, min_finished=4, task_name="")
    now = timezone.now()
    fail_tasks(2, at=now)
    assert Figures(now=now).measure(rule) == 0.0  # 2 finished < 4
    fail_tasks(2, at=now, status=states.SUCCESS)
    fail_tasks(1, at=now, status=states.STARTED)  # not finished: does not count
    assert Figures(now=now).measure(rule) == 0.5


def test_business_measures_count_what_they_name(ops):
    now = timezone.now()
    user = UserFactory()

    def order(number, **fields):
        return Order.objects.create(number=number, user=user, subtotal=Decimal(1), total=Decimal(1), **fields)

    order("late", expires_at=now - timedelta(minutes=20))
    order("just-late", expires_at=now - timedelta(minutes=5))  # within the sweeper's grace
    order("expired", expires_at=now - timedelta(hours=1), status=Order.Status.EXPIRED)
    order("flagged", expires_at=now, status=Order.Status.EXPIRED, needs_refund=True)
    PendingEvent.objects.create(event_id=uuid.uuid4(), user_id=1, action_id=1, occurred_at=now)
    ExportJob.objects.create(target="orders", created_by=ops, status=ExportJob.Status.FAILED)
    ExportJob.objects.create(target="orders", created_by=ops, status=ExportJob.Status.DONE)

    figures = Figures(now=now + timedelta(seconds=90))

    def measure(kind, **fields):
        return figures.measure(AlertRule(kind=kind, threshold=1, **fields))

    assert measure(Kind.OVERDUE_ORDERS, window_seconds=600) == 1
    assert measure(Kind.REFUND_FLAGGED) == 1
    assert measure(Kind.OUTBOX_BACKLOG) == 1
    assert 89 <= measure(Kind.OUTBOX_OLDEST_AGE) <= 91
    assert measure(Kind.FAILED_EXPORTS, window_seconds=3600) == 1
    assert measure(Kind.FAILED_EXPORTS, window_seconds=60) == 0


def test_one_broken_measure_does_not_stop_the_other_rules(monkeypatch):
    AlertRuleFactory(kind=Kind.QUEUE_LENGTH, threshold=1)
    AlertRuleFactory(threshold=1)
    fail_tasks(1, at=timezone.now())

    def broken(figures, rule):
        raise RuntimeError("source down")

    monkeypatch.setitem(services.Figures.__init__.__globals__["MEASURES"], Kind.QUEUE_LENGTH, broken)
    outcome = alerts_evaluate()
    assert (outcome.errors, outcome.fired) == (1, 1)


def test_webhook_and_sms_notifications_carry_only_an_id_in_the_task(django_capture_on_commit_callbacks, monkeypatch):
    rule = AlertRuleFactory(
        name="hooked",
        threshold=1,
        email_to="",
        webhook_url="https://hooks.example.com/alert",
        webhook_format=AlertRule.WebhookFormat.SLACK,
        sms_to="+15551234567",
    )
    published = []
    monkeypatch.setattr(
        services.alert_notification_deliver_task,
        "apply_async",
        lambda args=None, kwargs=None, **options: published.append((tuple(args or ()), kwargs or {})),
    )
    fail_tasks(1, at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        alerts_evaluate()
    notifications = list(AlertNotification.objects.order_by("channel"))
    assert [(n.channel, n.recipient) for n in notifications] == [
        ("sms", "+15551234567"),
        ("webhook", "https://hooks.example.com/alert"),
    ]
    assert sorted(published) == sorted(((n.pk,), {}) for n in notifications)
    slack = json.loads(notifications[1].body)
    assert list(slack) == ["text"] and slack["text"].startswith("[Backoffice alert] FIRING: hooked")
    assert rule.pk


def test_a_webhook_that_refuses_is_failed_and_one_that_is_down_is_retried(monkeypatch):
    import httpx

    rule = AlertRuleFactory(threshold=1, email_to="", webhook_url="https://hooks.example.com/alert")
    fail_tasks(1, at=timezone.now())
    alerts_evaluate()
    notification = AlertNotification.objects.get(event__rule=rule)

    monkeypatch.setattr(httpx, "post", lambda *a, **k: httpx.Response(503))
    with pytest.raises(services.DeliveryRetry):
        services.alert_notification_deliver(notification_id=notification.pk)
    monkeypatch.setattr(httpx, "post", lambda *a, **k: httpx.Response(404, text="no such hook"))
    assert services.alert_notification_deliver(notification_id=notification.pk) == "failed"
    notification.refresh_from_db()
    assert (notification.status, notification.error) == ("failed", "HTTP 404")
    assert services.alert_notification_deliver(notification_id=notification.pk) == "skipped"


def test_one_evaluation_of_the_default_rules_costs_a_bounded_number_of_queries(
    django_assert_max_num_queries, monkeypatch
):
    alert_rules_install_defaults()
    monkeypatch.setattr("backoffice.alerts.selectors.workers_online", lambda figures: 1)
    with django_assert_max_num_queries(2 * len(DEFAULT_RULES) + 2):
        alerts_evaluate()


def test_a_message_whose_task_was_lost_is_published_again_once(django_capture_on_commit_callbacks):
    AlertRuleFactory(threshold=1, reminders_per_hour=0)
    now = timezone.now()
    fail_tasks(1, at=now)
    with django_capture_on_commit_callbacks():  # published, but the message never reaches a worker
        alerts_evaluate(now=now)
    notification = AlertNotification.objects.get()
    AlertNotification.objects.filter(pk=notification.pk).update(created_at=now)  # auto_now_add: pin it

    with django_capture_on_commit_callbacks() as callbacks:
        services.alert_notifications_republish(now=now + timedelta(minutes=14))
    assert callbacks == []  # its retries may still be under way
    with django_capture_on_commit_callbacks() as callbacks:
        assert services.alert_notifications_republish(now=now + timedelta(minutes=16)) == 1
        assert services.alert_notifications_republish(now=now + timedelta(minutes=17)) == 0
    assert len(callbacks) == 1
    services.alert_notification_deliver(notification_id=notification.pk)
    with django_capture_on_commit_callbacks() as callbacks:
        assert services.alert_notifications_republish(now=now + timedelta(hours=1)) == 0  # sent: never again
    assert callbacks == [] and len(mail.outbox) == 1
