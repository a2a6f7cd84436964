"""Notification tasks: thin, each sends one message and owns its retry policy (exponential backoff with
jitter for transient failures). Services import these tasks at the top; each task imports its service
inside the function body (one import direction, as in every app).

Their arguments are personal data (phone numbers, addresses, verification codes, bodies): every publish of
them (delay, retry, the console, beat) carries masked `argsrepr`/`kwargsrepr` for Flower and the results,
and no result is stored for them at all.
"""

from celery import Task, shared_task

from backoffice.notify.redaction import redact_args, redact_kwargs
from backoffice.notify.sms import SmsTransientError
from backoffice.retries import EMAIL_TRANSIENT_ERRORS, retry_delivery


class PersonalDataTask(Task):
    """A task whose arguments must not be kept where staff read them."""

    ignore_result = True  # no TaskResult row (nor its STARTED state) with the arguments in it

    def apply_async(self, args=None, kwargs=None, *rest, **options):
        # Retries go through Signature.apply_async, which lands here too, so no publish escapes the masks.
        options["argsrepr"] = repr(redact_args(args))
        options["kwargsrepr"] = repr(redact_kwargs(kwargs))
        return super().apply_async(args, kwargs, *rest, **options)


@shared_task(name="notify.sms_send", base=PersonalDataTask, **retry_delivery(SmsTransientError))
def sms_send_task(*, phone: str, message: str) -> str:
    from backoffice.notify.services import sms_send

    return sms_send(phone=phone, message=message)


@shared_task(name="notify.email_send", base=PersonalDataTask, **retry_delivery(*EMAIL_TRANSIENT_ERRORS))
def email_send_task(*, to: str, subject: str, body: str) -> int:
    from backoffice.notify.services import email_send

    return email_send(to=to, subject=subject, body=body)
