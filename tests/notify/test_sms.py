import json
import logging

import httpx
import pytest

from backoffice.notify.sms import (
    ConsoleSmsBackend,
    HttpSmsBackend,
    SmsError,
    SmsTransientError,
    get_sms_backend,
)


def provider(status: int, body=None, seen=None):
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, json=body if body is not None else {})

    return httpx.MockTransport(handler)


def test_console_backend_logs_a_masked_line(caplog):
    with caplog.at_level(logging.INFO, logger="backoffice.notify.sms"):
        assert ConsoleSmsBackend().send(phone="+15551234567", message="hello") == "console"
    assert "SMS to +15*******67: [redacted] 5 chars" in caplog.text
    assert "hello" not in caplog.text


def test_http_backend_posts_json_with_the_bearer_token():
    seen = []
    backend = HttpSmsBackend(url="https://sms.example/send", token="tok", transport=provider(200, {"id": 42}, seen))
    assert backend.send(phone="+15551234567", message="hi") == "42"
    request = seen[0]
    assert (request.method, str(request.url)) == ("POST", "https://sms.example/send")
    assert request.headers["Authorization"] == "Bearer tok"
    assert json.loads(request.content) == {"to": "+15551234567", "message": "hi"}


@pytest.mark.parametrize(
    ("status", "error"), [(500, SmsTransientError), (503, SmsTransientError), (429, SmsTransientError), (400, SmsError)]
)
def test_http_backend_classifies_failures(status, error):
    backend = HttpSmsBackend(url="https://sms.example/send", token="", transport=provider(status))
    with pytest.raises(error) as caught:
        backend.send(phone="+15551234567", message="hi")
    assert (type(caught.value) is SmsTransientError) == (error is SmsTransientError)


def test_http_backend_unreachable_is_transient():
    def refuse(request):
        raise httpx.ConnectError("refused", request=request)

    backend = HttpSmsBackend(url="https://sms.example/send", token="", transport=httpx.MockTransport(refuse))
    with pytest.raises(SmsTransientError, match="unreachable"):
        backend.send(phone="+15551234567", message="hi")


def test_backend_comes_from_settings_and_falls_back_to_console_without_a_url(settings):
    settings.SMS_BACKEND = "backoffice.notify.sms.HttpSmsBackend"
    settings.SMS_HTTP_URL = ""
    assert type(get_sms_backend()) is ConsoleSmsBackend
    settings.SMS_HTTP_URL = "https://sms.example/send"
    settings.SMS_HTTP_TOKEN = "secret"
    backend = get_sms_backend()
    assert (type(backend), backend.url, backend.token) == (HttpSmsBackend, "https://sms.example/send", "secret")
    settings.SMS_BACKEND = "backoffice.notify.sms.ConsoleSmsBackend"
    assert type(get_sms_backend()) is ConsoleSmsBackend
