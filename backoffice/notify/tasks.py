"""Notification tasks: thin, each sends one message and owns its retry policy (exponential backoff with
jitter for transient failures). Services import these tasks at the top; each task imports its service
inside the function body (one import direction, as in every app)."""

import smtplib

from celery import shared_task

from backoffice.notify.sms import SmsTransientError

RETRY = {"retry_backoff": 5, "retry_backoff_max": 600, "retry_jitter": True, "max_retries": 6}  # ~30 min in all


@shared_task(name="notify.sms_send", autoretry_for=(SmsTransientError,), **RETRY)
def sms_send_task(*, phone: str, message: str) -> str:
    from backoffice.notify.services import sms_send

    return sms_send(phone=phone, message=message)


# Connection trouble is worth retrying; a refused recipient or bad credentials is not.
EMAIL_TRANSIENT = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError, TimeoutError)


@shared_task(name="notify.email_send", autoretry_for=EMAIL_TRANSIENT, **RETRY)
def email_send_task(*, to: str, subject: str, body: str) -> int:
    from backoffice.notify.services import email_send

    return email_send(to=to, subject=subject, body=body)
