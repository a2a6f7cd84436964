"""Sending notices (SMS through the configured backend, email through Django's) and the SMS verification
code flow: codes live in Redis (the cache) with a TTL, and requests are rate-limited per phone number.

Callers that are inside a transaction queue a notice with `sms_queue` / `email_queue` (published after
commit through backoffice.publishing, retried with backoff by the tasks); the tasks call `sms_send` / `email_send`.
A verification code is published at once instead: the client is told "sent" only when the broker took it.
"""

import re
import secrets

from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.utils.translation import gettext as _

from backoffice.errors import AppError
from backoffice.notify.sms import get_sms_backend
from backoffice.notify.tasks import email_send_task, sms_send_task
from backoffice.publishing import Publication, task_publish, task_publish_on_commit

PHONE_RE = re.compile(r"^\+?[1-9]\d{6,14}$")  # E.164: up to 15 digits, an optional leading +
CODE_TTL_S = 300  # a code is good for five minutes
CODE_RESEND_AFTER_S = 60  # one code per phone per minute
CODE_HOURLY_LIMIT = 5  # and at most five an hour, so a number cannot be flooded
CODE_MAX_ATTEMPTS = 5  # wrong guesses before the code is thrown away


class SmsCodeError(AppError):
    """A code that cannot be issued: a bad number, too soon, too many, or not sent."""


def phone_normalise(phone: str) -> str:
    cleaned = re.sub(r"[\s\-().]", "", phone or "")
    if not PHONE_RE.match(cleaned):
        raise SmsCodeError("bad_phone", _("Enter a phone number in international format, e.g. +15551234567."))
    return cleaned if cleaned.startswith("+") else f"+{cleaned}"


def sms_send(*, phone: str, message: str) -> str:
    return get_sms_backend().send(phone=phone, message=message)


def email_send(*, to: str, subject: str, body: str) -> int:
    return send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to], fail_silently=False)


def sms_queue(*, phone: str, message: str) -> Publication:
    return task_publish_on_commit(sms_send_task, kwargs={"phone": phone, "message": message})


def email_queue(*, to: str, subject: str, body: str) -> Publication:
    return task_publish_on_commit(email_send_task, kwargs={"to": to, "subject": subject, "body": body})


def _key(kind: str, phone: str) -> str:
    return f"notify:sms-code:{kind}:{phone}"


def sms_code_issue(*, phone: str) -> int:
    """Create a code for the phone, keep it in Redis with a TTL and queue the SMS; returns the TTL."""
    phone = phone_normalise(phone)
    if not cache.add(_key("recent", phone), 1, timeout=CODE_RESEND_AFTER_S):
        raise SmsCodeError(
            "too_soon",
            _("A code was sent moments ago; wait before asking again."),
            status=429,
            retry_after=CODE_RESEND_AFTER_S,
        )
    hourly = _key("hour", phone)
    cache.add(hourly, 0, timeout=3600)
    if cache.incr(hourly) > CODE_HOURLY_LIMIT:
        raise SmsCodeError(
            "too_many", _("Too many codes for this number; try again later."), status=429, retry_after=3600
        )
    code = f"{secrets.randbelow(10**6):06d}"
    cache.set_many({_key("code", phone): code, _key("attempts", phone): 0}, timeout=CODE_TTL_S)
    message = _("Your verification code is %(code)s.") % {"code": code}
    if not task_publish(sms_send_task, kwargs={"phone": phone, "message": message}):
        # Nothing was queued: forget the code and the resend guard, so the client may simply ask again.
        cache.delete_many([_key("code", phone), _key("attempts", phone), _key("recent", phone)])
        raise SmsCodeError("not_sent", _("The code could not be sent; try again in a moment."), status=503)
    return CODE_TTL_S


def sms_code_verify(*, phone: str, code: str) -> bool:
    """True once for the right code (then it is gone); a code dies after CODE_MAX_ATTEMPTS wrong guesses."""
    phone = phone_normalise(phone)
    expected = cache.get(_key("code", phone))
    if expected is None:
        return False
    if secrets.compare_digest(str(code), expected):
        cache.delete_many([_key("code", phone), _key("attempts", phone)])
        return True
    try:
        attempts = cache.incr(_key("attempts", phone))
    except ValueError:  # the attempts counter expired with the code
        return False
    if attempts >= CODE_MAX_ATTEMPTS:
        cache.delete_many([_key("code", phone), _key("attempts", phone)])
    return False
