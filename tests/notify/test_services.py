import json

import pytest
from django.test import Client

from backoffice.notify.services import (
    CODE_HOURLY_LIMIT,
    CODE_MAX_ATTEMPTS,
    SmsCodeError,
    email_queue,
    sms_code_issue,
    sms_code_verify,
    sms_queue,
)


@pytest.fixture
def sent(redis_client, monkeypatch):
    """SMS the code flow published (the task's apply_async replaced by a list)."""
    messages = []
    monkeypatch.setattr("backoffice.notify.tasks.sms_send_task.apply_async", lambda kwargs: messages.append(kwargs))
    return messages


def broker_down(*args, **kwargs):
    raise ConnectionRefusedError(111, "Connection refused")


@pytest.mark.django_db
def test_notices_are_published_only_after_commit(on_commit, monkeypatch):
    published = []
    monkeypatch.setattr(
        "backoffice.notify.tasks.sms_send_task.apply_async", lambda kwargs: published.append(("sms", kwargs))
    )
    monkeypatch.setattr(
        "backoffice.notify.tasks.email_send_task.apply_async", lambda kwargs: published.append(("email", kwargs))
    )
    with on_commit(execute=True) as callbacks:
        sms_queue(phone="+15551234567", message="m")
        email_queue(to="a@example.com", subject="s", body="b")
        assert published == []
    assert len(callbacks) == 2
    assert published == [
        ("sms", {"phone": "+15551234567", "message": "m"}),
        ("email", {"to": "a@example.com", "subject": "s", "body": "b"}),
    ]


def code_of(message: dict) -> str:
    return message["message"].rsplit(" ", 1)[1].rstrip(".")


def test_code_is_sent_kept_with_a_ttl_and_good_once(sent, redis_client):
    assert sms_code_issue(phone="+1 555 123 4567") == 300
    assert [m["phone"] for m in sent] == ["+15551234567"]
    code = code_of(sent[0])
    assert len(code) == 6 and code.isdigit()
    [key] = [k for k in redis_client.keys("*sms-code:code:+15551234567")]
    assert 0 < redis_client.ttl(key) <= 300
    assert sms_code_verify(phone="+15551234567", code="000000" if code != "000000" else "111111") is False
    assert sms_code_verify(phone="+15551234567", code=code) is True
    assert sms_code_verify(phone="+15551234567", code=code) is False


def test_a_second_code_within_a_minute_is_refused(sent):
    sms_code_issue(phone="+15551234567")
    with pytest.raises(SmsCodeError) as caught:
        sms_code_issue(phone="+15551234567")
    assert (caught.value.code, caught.value.status, len(sent)) == ("too_soon", 429, 1)
    sms_code_issue(phone="+15557654321")  # another number is not held back
    assert len(sent) == 2


def test_hourly_limit_per_phone(sent, redis_client):
    for _ in range(CODE_HOURLY_LIMIT):
        sms_code_issue(phone="+15551234567")
        for key in redis_client.keys("*sms-code:recent:*"):
            redis_client.delete(key)  # as if a minute had passed
    with pytest.raises(SmsCodeError) as caught:
        sms_code_issue(phone="+15551234567")
    assert caught.value.code == "too_many"
    assert len(sent) == CODE_HOURLY_LIMIT


def test_code_dies_after_too_many_wrong_guesses(sent):
    sms_code_issue(phone="+15551234567")
    code = code_of(sent[0])
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(CODE_MAX_ATTEMPTS):
        assert sms_code_verify(phone="+15551234567", code=wrong) is False
    assert sms_code_verify(phone="+15551234567", code=code) is False


@pytest.mark.parametrize("phone", ["", "12", "abc", "+0123456789", "+1234567890123456"])
def test_bad_phone_numbers_are_refused(sent, phone):
    with pytest.raises(SmsCodeError) as caught:
        sms_code_issue(phone=phone)
    assert caught.value.code == "bad_phone"
    assert sent == []


@pytest.mark.django_db
def test_endpoint_answers_202_then_429_with_retry_after(sent):
    client = Client()
    post = lambda data: client.post("/api/sms/code/", data=json.dumps(data), content_type="application/json")  # noqa: E731
    response = post({"phone": "+15551234567"})
    assert (response.status_code, response.json()) == (202, {"sent": True, "expires_in": 300})
    response = post({"phone": "+15551234567"})
    assert (response.status_code, response.json()["error"], response["Retry-After"]) == (429, "too_soon", "60")
    response = post({"phone": "nope"})
    assert (response.status_code, response.json()["error"]) == (400, "bad_phone")
    response = client.post("/api/sms/code/", data=b"{", content_type="application/json")
    assert (response.status_code, response.json()["error"]) == (400, "bad_json")
    assert len(sent) == 1


@pytest.mark.django_db
def test_a_code_the_broker_did_not_take_is_not_reported_sent_and_may_be_asked_again(redis_client, monkeypatch, caplog):
    monkeypatch.setattr("backoffice.notify.tasks.sms_send_task.apply_async", broker_down)
    client = Client()
    post = lambda: client.post("/api/sms/code/", data={"phone": "+15551234567"}, content_type="application/json")  # noqa: E731

    response = post()

    assert (response.status_code, response.json()["error"]) == (503, "not_sent")
    assert sms_code_verify(phone="+15551234567", code="000000") is False
    assert [r.getMessage() for r in caplog.records if r.name == "backoffice.publishing"] == [
        "notify.sms_send not queued (ConnectionRefusedError: [Errno 111] Connection refused)"
    ]
    assert post().status_code == 503  # not 429: nothing was sent, so nothing holds the number back
