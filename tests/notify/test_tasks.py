import smtplib

import pytest

from backoffice.notify import sms
from backoffice.notify.tasks import email_send_task, sms_send_task


class FlakyBackend(sms.BaseSmsBackend):
    """Fails transiently `failures` times, then sends."""

    calls = 0
    failures = 2
    error = sms.SmsTransientError

    def send(self, *, phone, message):
        FlakyBackend.calls += 1
        if FlakyBackend.calls <= self.failures:
            raise self.error("provider down")
        return f"sent-{FlakyBackend.calls}"


@pytest.fixture
def flaky(settings, monkeypatch):
    settings.SMS_BACKEND = "tests.notify.test_tasks.FlakyBackend"
    monkeypatch.setattr(FlakyBackend, "calls", 0)
    return FlakyBackend


def test_sms_task_retries_transient_failures_with_backoff_then_sends(flaky):
    result = sms_send_task.apply(kwargs={"phone": "+15551234567", "message": "hi"})
    assert (result.successful(), result.result, flaky.calls) == (True, "sent-3", 3)


def test_sms_task_gives_up_at_once_on_a_permanent_failure(flaky, monkeypatch):
    monkeypatch.setattr(FlakyBackend, "error", sms.SmsError)
    result = sms_send_task.apply(kwargs={"phone": "+15551234567", "message": "hi"})
    assert (result.failed(), flaky.calls) == (True, 1)


def test_sms_task_retry_policy_is_exponential_with_a_cap():
    assert sms_send_task.autoretry_for == (sms.SmsTransientError,)
    assert (sms_send_task.retry_backoff, sms_send_task.retry_backoff_max, sms_send_task.max_retries) == (5, 600, 6)


def test_email_task_sends_through_django_backend(mailoutbox, settings):
    result = email_send_task.apply(kwargs={"to": "a@example.com", "subject": "Hi", "body": "Body"})
    assert result.result == 1
    assert [(m.to, m.subject, m.body, m.from_email) for m in mailoutbox] == [
        (["a@example.com"], "Hi", "Body", settings.DEFAULT_FROM_EMAIL)
    ]


def test_email_task_retries_a_dropped_connection(monkeypatch, mailoutbox):
    calls = []

    def flaky_send(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise smtplib.SMTPServerDisconnected("gone")
        return 1

    monkeypatch.setattr("backoffice.notify.services.send_mail", flaky_send)
    result = email_send_task.apply(kwargs={"to": "a@example.com", "subject": "Hi", "body": "Body"})
    assert (result.result, len(calls)) == (1, 2)
