"""Notification tasks: thin, each sends one message and owns its retry policy (exponential backoff with
jitter for transient failures). Services import these tasks at the top; each task imports its service
inside the function body (one import direction, as in every app)."""

from celery import shared_task

from backoffice.notify.sms import SmsTransientError
from backoffice.retries import EMAIL_TRANSIENT_ERRORS, retry_delivery


@shared_task(name="notify.sms_send", **retry_delivery(SmsTransientError))
def sms_send_task(*, phone: str, message: str) -> str:
    from backoffice.notify.services import sms_send

    return sms_send(phone=phone, message=message)


@shared_task(name="notify.email_send", **retry_delivery(*EMAIL_TRANSIENT_ERRORS))
def email_send_task(*, to: str, subject: str, body: str) -> int:
    from backoffice.notify.services import email_send

    return email_send(to=to, subject=subject, body=body)
