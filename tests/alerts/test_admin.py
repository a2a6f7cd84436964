"""The alert admin: rules edited by Ops, silenced with a reason through their own page, history read-only."""

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from backoffice.alerts.models import AlertEvent, AlertNotification, AlertRule
from backoffice.auditing import audit_message
from tests.alerts.factories import AlertRuleFactory

pytestmark = pytest.mark.django_db


def silence_url(rule):
    return reverse("admin:portal_alerts_alertrule_silence", args=[rule.pk])


def test_ops_silence_a_rule_with_a_reason_and_the_audit_log_says_who_and_why(client, ops):
    rule = AlertRuleFactory()
    client.force_login(ops)
    assert client.get(silence_url(rule)).status_code == 200
    response = client.post(silence_url(rule), {"minutes": 30, "reason": "maintenance window"})
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.is_silenced() and rule.silenced_by == ops and rule.silence_reason == "maintenance window"
    entry = LogEntry.objects.get(object_id=str(rule.pk))
    assert entry.user == ops and audit_message(entry).endswith(": maintenance window")


@pytest.mark.parametrize("data", [{"minutes": 30, "reason": ""}, {"minutes": 0, "reason": "x"}, {"minutes": "abc"}])
def test_a_silence_without_reason_or_with_a_bad_duration_is_a_form_error(client, ops, data):
    rule = AlertRuleFactory()
    client.force_login(ops)
    response = client.post(silence_url(rule), data)
    assert response.status_code == 400
    rule.refresh_from_db()
    assert rule.silenced_until is None and not LogEntry.objects.exists()


def test_an_analyst_may_not_silence(client, analyst):
    rule = AlertRuleFactory()
    client.force_login(analyst)
    assert client.post(silence_url(rule), {"minutes": 30, "reason": "x"}).status_code == 403
    rule.refresh_from_db()
    assert rule.silenced_until is None


def test_a_rule_with_a_bad_recipient_is_refused_by_the_form(client, ops):
    client.force_login(ops)
    data = {
        "name": "bad",
        "kind": AlertRule.Kind.QUEUE_LENGTH,
        "threshold": 10,
        "window_seconds": 300,
        "min_finished": 10,
        "reminders_per_hour": 1,
        "email_to": "not-an-address",
        "webhook_url": "ftp://example.com/x",
        "webhook_format": "json",
        "sms_to": "12",
        "is_enabled": "on",
    }
    response = client.post(reverse("admin:portal_alerts_alertrule_add"), data)
    assert response.status_code == 200
    assert set(response.context["adminform"].form.errors) == {"email_to", "webhook_url", "sms_to"}
    assert not AlertRule.objects.exists()


def test_history_pages_show_whom_was_notified_with_phones_masked(client, ops):
    rule = AlertRuleFactory(name="watched")
    event = AlertEvent.objects.create(rule=rule, fired_at="2026-01-01T00:00Z", value=5, peak_value=5, threshold=3)
    AlertNotification.objects.create(
        event=event, reason="firing", channel="sms", recipient="+15551234567", subject="s", body="s"
    )
    client.force_login(ops)
    page = client.get(reverse("admin:portal_alerts_alertevent_changelist")).content.decode()
    assert "+15*******67" in page and "+15551234567" not in page
    change = client.get(reverse("admin:portal_alerts_alertevent_change", args=[event.pk]))
    assert change.status_code == 200 and "+15551234567" not in change.content.decode()
    assert client.post(reverse("admin:portal_alerts_alertevent_delete", args=[event.pk])).status_code == 403
