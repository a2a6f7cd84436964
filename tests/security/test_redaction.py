"""Verification codes, phone numbers and email bodies are kept nowhere staff read: not in stored task results,
not in Flower's task events, not in the log."""

import json
import logging

import pytest
from celery.app.task import Context
from django.core.cache import cache
from django_celery_results.models import TaskResult

from backoffice.notify import services
from backoffice.notify.tasks import email_send_task, sms_send_task
from tests.processes import wait_for

PHONE = "+15550001234"


def _published(monkeypatch, task):
    """The options each publish of the task carries, without a broker."""
    sent = []
    monkeypatch.setattr(task.app, "send_task", lambda name, args=None, kwargs=None, **options: sent.append(options))
    return sent


def test_every_publish_of_a_notification_carries_masked_arguments(monkeypatch):
    sent = _published(monkeypatch, sms_send_task)

    sms_send_task.delay(phone=PHONE, message="Your verification code is 123456.")
    email_send_task.apply_async(kwargs={"to": "jane@example.com", "subject": "Hi", "body": "secret body"})

    assert [(options["argsrepr"], options["kwargsrepr"]) for options in sent] == [
        ("()", "{'phone': '+15*******34', 'message': '[redacted] 33 chars'}"),
        ("()", "{'to': 'j***@example.com', 'subject': 'Hi', 'body': '[redacted] 11 chars'}"),
    ]


def test_a_retry_is_published_masked_too(monkeypatch):
    sent = _published(monkeypatch, sms_send_task)
    request = Context(id="t-1", args=[], kwargs={"phone": PHONE, "message": "code 123456"}, retries=1)

    sms_send_task.signature_from_request(request).apply_async()  # what Task.retry publishes

    assert sent[0]["kwargsrepr"] == "{'phone': '+15*******34', 'message': '[redacted] 11 chars'}"


def test_notification_tasks_store_no_result():
    assert sms_send_task.ignore_result is True
    assert email_send_task.ignore_result is True


def test_the_console_sms_backend_logs_no_code_and_no_number(caplog):
    from backoffice.notify.sms import ConsoleSmsBackend

    with caplog.at_level(logging.INFO):
        ConsoleSmsBackend().send(phone=PHONE, message="Your verification code is 123456.")

    assert "123456" not in caplog.text
    assert PHONE not in caplog.text
    assert "SMS to +15*******34" in caplog.text


@pytest.mark.slow
def test_a_code_sent_through_the_real_path_is_found_nowhere(client, ops, live_flower, live_worker):
    response = client.post("/api/sms/code/", json.dumps({"phone": PHONE}), content_type="application/json")
    assert response.status_code == 202
    code = cache.get(services._key("code", PHONE))
    assert code and len(code) == 6

    client.force_login(ops)

    def flower_tasks() -> dict:
        body = b"".join(client.get("/ops/flower/api/tasks").streaming_content).decode()
        tasks = json.loads(body)
        done = [task for task in tasks.values() if task["name"] == "notify.sms_send" and task["state"] == "SUCCESS"]
        return (tasks, body) if done else None

    tasks, tasks_body = wait_for(flower_tasks, timeout=30, message="Flower to see the SMS task succeed")
    wait_for(lambda: "SMS to" in live_worker.log(), timeout=10, message="the console backend's log line")
    (task_id,) = [task_id for task_id, task in tasks.items() if task["name"] == "notify.sms_send"]
    info = b"".join(client.get(f"/ops/flower/api/task/info/{task_id}").streaming_content).decode()
    results = json.dumps(list(TaskResult.objects.values()), default=str)

    places = {"Flower's task list": tasks_body, "Flower's task info": info, "the log": live_worker.log()}
    for place, text in places.items():
        assert code not in text, place
        assert PHONE not in text, place
    assert code not in results and PHONE not in results
    assert not TaskResult.objects.filter(task_id=task_id).exists()
    assert "+15*******34" in info  # what Flower shows instead
    assert "SMS to +15*******34: [redacted]" in live_worker.log()
