"""Every change to alert rules' state: evaluation (fire, remind, recover), silencing, delivery of messages.

State moves only by conditional UPDATEs on the rule (`firing_since IS NULL` to fire, `IS NOT NULL` to recover,
`last_notified_at <= now - interval` to remind), so overlapping evaluations (a slow run and the next beat tick)
never send the same message twice: only the evaluation whose update won writes the event and its messages.

Services import the delivery task at the top; the tasks import services inside their bodies (one direction).
"""

import json
import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from backoffice.alerts.defaults import DEFAULT_RULES
from backoffice.alerts.models import AlertEvent, AlertNotification, AlertRule
from backoffice.alerts.selectors import Figures
from backoffice.alerts.tasks import alert_notification_deliver_task
from backoffice.auditing import audit_record
from backoffice.notify.services import email_send, sms_send
from backoffice.notify.sms import SmsTransientError
from backoffice.publishing import task_publish_on_commit

logger = logging.getLogger(__name__)

SUBJECT_PREFIX = "[Backoffice alert]"
WEBHOOK_TIMEOUT_S = 5.0
SILENCE_MAX = timedelta(days=7)
# A message still queued this long after its last publish was lost on the way (broker down at commit, a purged
# queue): the evaluation publishes it again. Longer than the delivery task's retries take (5+10+...+160 s).
REPUBLISH_AFTER = timedelta(minutes=15)
REPUBLISH_BATCH = 100  # a silence is a pause, not a way to switch a rule off unnoticed
Reason = AlertNotification.Reason
Channel = AlertNotification.Channel


class DeliveryRetry(Exception):
    """The message was not delivered but may be on a retry (connection trouble, 5xx, 429)."""


@dataclass
class Evaluation:
    fired: int = 0
    reminded: int = 0
    resolved: int = 0
    errors: int = 0


# -- defaults -------------------------------------------------------------------------------------------------------


@transaction.atomic
def alert_rules_install_defaults() -> dict[str, list[str]]:
    """Create each missing default rule by name; never touch one that exists (staff own them once installed)."""
    report: dict[str, list[str]] = {"created": [], "kept": []}
    for default in DEFAULT_RULES:
        _, created = AlertRule.objects.get_or_create(name=default["name"], defaults=default)
        report["created" if created else "kept"].append(default["name"])
    return report


# -- evaluation -----------------------------------------------------------------------------------------------------


def alerts_evaluate(*, now: datetime | None = None) -> Evaluation:
    """Measure every enabled rule once and move its state; each rule in its own short transaction."""
    now = now or timezone.now()
    figures = Figures(now=now)
    outcome = Evaluation()
    rules = list(AlertRule.objects.filter(is_enabled=True).order_by("pk"))
    if any(rule.kind == AlertRule.Kind.NO_WORKER for rule in rules):
        figures.start_worker_ping()
    quiet = []  # quiet and still quiet: their figures are written together, in one UPDATE
    try:
        for rule in rules:
            try:
                value = figures.measure(rule)
            except Exception:  # one broken measure (a source down) must not stop the other rules
                logger.exception("alert rule %s (%s): measuring failed", rule.pk, rule.kind)
                outcome.errors += 1
                continue
            if value < rule.threshold and rule.firing_since is None:
                rule.last_value, rule.last_evaluated_at = value, now
                quiet.append(rule)
                continue
            result = alert_rule_apply(rule=rule, value=value, now=now)
            if result:
                setattr(outcome, result, getattr(outcome, result) + 1)
    finally:
        figures.close()
    # Only these two fields: a rule fired meanwhile by an overlapping evaluation keeps its state.
    AlertRule.objects.bulk_update(quiet, ["last_value", "last_evaluated_at"])
    alert_notifications_republish(now=now)
    return outcome


def alert_notifications_republish(*, now: datetime) -> int:
    """Publish again the messages whose delivery task was lost; each claimed by a conditional update, so two
    evaluations never publish the same one twice. Reads the (status, created_at) index: queued rows are few."""
    stale = now - REPUBLISH_AFTER
    candidates = list(
        AlertNotification.objects.filter(status=AlertNotification.Status.QUEUED, created_at__lt=stale)
        .filter(Q(published_at__isnull=True) | Q(published_at__lt=stale))
        .values_list("pk", flat=True)[:REPUBLISH_BATCH]
    )
    claimed = 0
    for pk in candidates:
        won = (
            AlertNotification.objects.filter(pk=pk, status=AlertNotification.Status.QUEUED)
            .filter(Q(published_at__isnull=True) | Q(published_at__lt=stale))
            .update(published_at=now)
        )
        if won:
            claimed += 1
            task_publish_on_commit(alert_notification_deliver_task, args=[pk])
    if claimed:
        logger.warning("alerts: %d queued notifications published again", claimed)
    return claimed


def alert_rule_apply(*, rule: AlertRule, value: float, now: datetime) -> str | None:
    """Record the rule's measured value and fire, remind or recover it. Returns what happened, if anything."""
    rules = AlertRule.objects.filter(pk=rule.pk)
    is_firing = value >= rule.threshold
    if not is_firing and rule.firing_since is None:  # the common case: quiet and still quiet, one UPDATE
        rules.update(last_value=value, last_evaluated_at=now)
        return None
    with transaction.atomic():
        return _rule_transition(rule=rule, rules=rules, value=value, is_firing=is_firing, now=now)


def _rule_transition(*, rule: AlertRule, rules, value: float, is_firing: bool, now: datetime) -> str | None:
    silenced = rule.is_silenced(now)
    if is_firing and rule.firing_since is None:
        won = rules.filter(firing_since__isnull=True).update(
            firing_since=now,
            last_value=value,
            last_evaluated_at=now,
            last_notified_at=None if silenced else now,
        )
        if won:
            event = AlertEvent.objects.create(
                rule=rule, fired_at=now, value=value, peak_value=value, threshold=rule.threshold
            )
            if not silenced:
                _notify(rule=rule, event=event, reason=Reason.FIRING, value=value, now=now)
            return "fired"
    if is_firing:  # it was firing already (or another evaluation just fired it)
        AlertEvent.objects.filter(rule=rule, resolved_at__isnull=True).update(
            peak_value=Greatest(F("peak_value"), value)
        )
        due = now - timedelta(seconds=3600 / rule.reminders_per_hour) if rule.reminders_per_hour else None
        locally_due = due is not None and (rule.last_notified_at is None or rule.last_notified_at <= due)
        if silenced or not locally_due:  # as loaded, no reminder is due: only the figures change
            rules.update(last_value=value, last_evaluated_at=now)
            return None
        # Claimed by the update, so of two overlapping evaluations only one reminds.
        not_since_due = Q(last_notified_at__isnull=True) | Q(last_notified_at__lte=due)
        won = rules.filter(not_since_due, firing_since__isnull=False).update(
            last_notified_at=now, last_value=value, last_evaluated_at=now
        )
        event = AlertEvent.objects.filter(rule=rule, resolved_at__isnull=True).first() if won else None
        if event is None:
            rules.update(last_value=value, last_evaluated_at=now)
            return None
        _notify(rule=rule, event=event, reason=Reason.REMINDER, value=value, now=now)
        return "reminded"
    won = rules.filter(firing_since__isnull=False).update(
        firing_since=None, last_value=value, last_evaluated_at=now, last_notified_at=None
    )
    if not won:
        rules.update(last_value=value, last_evaluated_at=now)
        return None
    event = AlertEvent.objects.filter(rule=rule, resolved_at__isnull=True).first()
    if event is None:
        return "resolved"
    AlertEvent.objects.filter(pk=event.pk).update(resolved_at=now)
    event.resolved_at = now
    # Only those who heard it fire hear it recover; a silenced rule sends nothing.
    if not silenced and event.notifications.exists():
        _notify(rule=rule, event=event, reason=Reason.RESOLVED, value=value, now=now)
    return "resolved"


# -- messages -------------------------------------------------------------------------------------------------------


def _subject(rule: AlertRule, reason: str) -> str:
    word = {Reason.FIRING: "FIRING", Reason.REMINDER: "STILL FIRING", Reason.RESOLVED: "RESOLVED"}[reason]
    return f"{SUBJECT_PREFIX} {word}: {rule.name}"


def alert_payload(*, rule: AlertRule, event: AlertEvent, reason: str, value: float, now: datetime) -> dict:
    """The JSON a webhook receives (and the facts every other message states)."""
    return {
        "rule": rule.name,
        "rule_id": rule.pk,
        "kind": rule.kind,
        "state": reason,
        "value": value,
        "threshold": rule.threshold,
        "fired_at": event.fired_at.isoformat(),
        "resolved_at": event.resolved_at.isoformat() if event.resolved_at else None,
        "at": now.isoformat(),
        "text": _subject(rule, reason),
    }


def _text(payload: dict, rule: AlertRule) -> str:
    lines = [
        payload["text"],
        "",
        f"{_('Measure')}: {rule.get_kind_display()}" + (f" ({rule.task_name})" if rule.task_name else ""),
        f"{_('Value')}: {payload['value']:g} ({_('fires at')} {payload['threshold']:g})",
        f"{_('Firing since')}: {payload['fired_at']}",
    ]
    if payload["resolved_at"]:
        lines.append(f"{_('Resolved at')}: {payload['resolved_at']}")
    return "\n".join(lines) + "\n"


def _notify(*, rule: AlertRule, event: AlertEvent, reason: str, value: float, now: datetime) -> list[int]:
    """One notification row per recipient and channel, each delivered by its own task after commit."""
    payload = alert_payload(rule=rule, event=event, reason=reason, value=value, now=now)
    subject, text = payload["text"], _text(payload, rule)
    rows = [
        AlertNotification(event=event, reason=reason, channel=Channel.EMAIL, recipient=to, subject=subject, body=text)
        for to in rule.email_recipients
    ]
    if rule.webhook_url:
        body = {"text": text} if rule.webhook_format == AlertRule.WebhookFormat.SLACK else payload
        rows.append(
            AlertNotification(
                event=event,
                reason=reason,
                channel=Channel.WEBHOOK,
                recipient=rule.webhook_url,
                subject=subject,
                body=json.dumps(body),
            )
        )
    rows += [
        AlertNotification(
            event=event, reason=reason, channel=Channel.SMS, recipient=phone, subject=subject, body=subject
        )
        for phone in rule.sms_recipients
    ]
    for row in rows:
        row.published_at = now
    created = AlertNotification.objects.bulk_create(rows)
    ids = [row.pk for row in created]
    for pk in ids:
        task_publish_on_commit(alert_notification_deliver_task, args=[pk])
    return ids


def alert_notification_deliver(*, notification_id: int) -> str:
    """Send one queued notification. DeliveryRetry for trouble worth retrying; other failures mark it failed."""
    notification = AlertNotification.objects.filter(pk=notification_id).first()
    if notification is None or notification.status != AlertNotification.Status.QUEUED:
        return "skipped"  # redelivered after it was sent (or given up)
    try:
        _send(notification)
    except DeliveryRetry:
        raise
    except Exception as exc:  # noqa: BLE001 - a refused message is recorded, not retried forever
        alert_notification_fail(notification_id=notification_id, error=str(exc))
        return "failed"
    AlertNotification.objects.filter(pk=notification_id, status=AlertNotification.Status.QUEUED).update(
        status=AlertNotification.Status.SENT, sent_at=timezone.now(), error=""
    )
    return "sent"


def alert_notification_fail(*, notification_id: int, error: str) -> None:
    AlertNotification.objects.filter(pk=notification_id, status=AlertNotification.Status.QUEUED).update(
        status=AlertNotification.Status.FAILED, error=error[:2000]
    )


EMAIL_TRANSIENT = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError, TimeoutError)


def _send(notification: AlertNotification) -> None:
    if notification.channel == Channel.EMAIL:
        try:
            email_send(to=notification.recipient, subject=notification.subject, body=notification.body)
        except EMAIL_TRANSIENT as exc:
            raise DeliveryRetry(str(exc)) from exc
    elif notification.channel == Channel.SMS:
        try:
            sms_send(phone=notification.recipient, message=notification.body)
        except SmsTransientError as exc:
            raise DeliveryRetry(str(exc)) from exc
    else:
        try:
            response = httpx.post(
                notification.recipient,
                content=notification.body,
                headers={"Content-Type": "application/json"},
                timeout=WEBHOOK_TIMEOUT_S,
                follow_redirects=False,
            )
        except httpx.TransportError as exc:
            raise DeliveryRetry(str(exc)) from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise DeliveryRetry(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            # Only the status: the answer of whatever the URL points at is not shown to staff.
            raise ValueError(f"HTTP {response.status_code}")


# -- silencing ------------------------------------------------------------------------------------------------------


@transaction.atomic
def alert_rule_silence(*, rule: AlertRule, user, minutes: int, reason: str, now: datetime | None = None) -> datetime:
    """Silence the rule for `minutes`; who and why go to the audit log."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(_("Say why the rule is silenced."), code="reason")
    if minutes < 1 or timedelta(minutes=minutes) > SILENCE_MAX:
        raise ValidationError(_("Silence a rule for between 1 minute and 7 days."), code="minutes")
    until = now + timedelta(minutes=minutes)
    AlertRule.objects.filter(pk=rule.pk).update(silenced_until=until, silenced_by=user, silence_reason=reason[:500])
    audit_record(
        actor=user,
        message=gettext_noop("Silenced until %(until)s: %(reason)s"),
        params={"until": until.isoformat(timespec="seconds"), "reason": reason[:500]},
        objects=[rule],
    )
    rule.refresh_from_db()
    return until


@transaction.atomic
def alert_rule_unsilence(*, rule: AlertRule, user) -> None:
    AlertRule.objects.filter(pk=rule.pk).update(silenced_until=None, silenced_by=None, silence_reason="")
    audit_record(actor=user, message=gettext_noop("Silence lifted"), objects=[rule])
    rule.refresh_from_db()
