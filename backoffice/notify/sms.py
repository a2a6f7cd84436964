"""SMS backends: a small interface, a console/log backend (the default, and the fallback while no provider is
configured) and an HTTP provider backend configured from SMS_HTTP_URL / SMS_HTTP_TOKEN.

Chosen by settings.SMS_BACKEND (a dotted path), the way Django chooses its email backend.
"""

import abc
import logging

import httpx
from django.conf import settings
from django.utils.module_loading import import_string

from backoffice.notify.redaction import mask_phone, mask_text

logger = logging.getLogger(__name__)

HTTP_TIMEOUT_S = 5.0  # a slow provider fails the attempt; the task retries with backoff


class SmsError(Exception):
    """The message was not sent and retrying will not help (a bad number, a rejected request)."""


class SmsTransientError(SmsError):
    """The message was not sent but may be on a retry (timeout, connection error, 5xx, 429)."""


class BaseSmsBackend(abc.ABC):
    @abc.abstractmethod
    def send(self, *, phone: str, message: str) -> str:
        """Send one message; returns the provider's message id (or a local one). Raises SmsError."""


class ConsoleSmsBackend(BaseSmsBackend):
    """Logs that a message would have been sent, instead of sending it: development, and no provider configured.

    The log line is masked like Flower and the results (a log is kept and read by many): the code itself is
    in the cache, under the phone number, for as long as it is valid.
    """

    def send(self, *, phone: str, message: str) -> str:
        logger.info("SMS to %s: %s", mask_phone(phone), mask_text(message))
        return "console"


class HttpSmsBackend(BaseSmsBackend):
    """POSTs {"to", "message"} as JSON with a bearer token; expects a 2xx answer with an optional "id"."""

    def __init__(self, *, url: str | None = None, token: str | None = None, transport=None):
        self.url = url if url is not None else settings.SMS_HTTP_URL
        self.token = token if token is not None else settings.SMS_HTTP_TOKEN
        self.transport = transport  # httpx.MockTransport in tests

    def send(self, *, phone: str, message: str) -> str:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            with httpx.Client(timeout=HTTP_TIMEOUT_S, transport=self.transport) as client:
                response = client.post(self.url, json={"to": phone, "message": message}, headers=headers)
        except httpx.HTTPError as exc:
            raise SmsTransientError(f"SMS provider unreachable: {exc}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise SmsTransientError(f"SMS provider answered {response.status_code}")
        if response.status_code >= 400:
            raise SmsError(f"SMS provider refused the message: {response.status_code} {response.text[:200]}")
        try:
            return str(response.json().get("id", ""))
        except ValueError:
            return ""


def get_sms_backend() -> BaseSmsBackend:
    """The configured backend; the HTTP backend without a URL falls back to the console one."""
    backend_class = import_string(settings.SMS_BACKEND)
    if issubclass(backend_class, HttpSmsBackend) and not settings.SMS_HTTP_URL:
        logger.warning("SMS_BACKEND is the HTTP provider but SMS_HTTP_URL is empty: writing SMS to the log")
        return ConsoleSmsBackend()
    return backend_class()
