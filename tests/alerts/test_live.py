"""Alerts end to end: a real worker and a real beat, a burst of failing tasks, email and a webhook receiver."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from celery import states
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_results.models import TaskResult

from backoffice.alerts.models import AlertEvent, AlertNotification, AlertRule
from backoffice.celery import app as celery_app
from tests import processes
from tests.alerts import mailbox
from tests.processes import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WINDOW_S = 5  # failures count for 5 s: the rule recovers soon after the burst stops
BURST = 5


@pytest.fixture
def webhook_receiver():
    """An HTTP server that keeps every JSON body posted to it, by path."""
    received: list[tuple[str, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.received = received
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


def test_a_burst_of_failures_sends_one_alert_and_one_recovery_and_a_silenced_rule_sends_nothing(
    redis_client, tmp_path, webhook_receiver, ops
):
    maildir = tmp_path / "mail"
    maildir.mkdir()
    watched = AlertRule.objects.create(
        name="ping failing",
        kind=AlertRule.Kind.TASK_FAILURES,
        task_name="backoffice.ping",
        threshold=3,
        window_seconds=WINDOW_S,
        reminders_per_hour=0,
        email_to="oncall@example.com",
        webhook_url=f"{webhook_receiver.url}/watched",
    )
    silenced = AlertRule.objects.create(
        name="ping failing (silenced)",
        kind=AlertRule.Kind.TASK_FAILURES,
        task_name="backoffice.ping",
        threshold=3,
        window_seconds=WINDOW_S,
        email_to="silenced@example.com",
        webhook_url=f"{webhook_receiver.url}/silenced",
        silenced_until=timezone.now() + timedelta(hours=1),
        silenced_by=ops,
        silence_reason="known, being fixed",
    )
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="alerts fast", task="alerts.evaluate", interval=every_second)

    worker = processes.worker(
        tmp_path, EMAIL_BACKEND="tests.alerts.mailbox.FileMailbox", ALERTS_TEST_MAILDIR=str(maildir)
    )
    beat = processes.beat(tmp_path)
    try:
        wait_for(
            lambda: AlertRule.objects.filter(pk=watched.pk, last_evaluated_at__isnull=False).exists(),
            timeout=30,
            message="beat and the worker to evaluate the rules",
        )
        assert mailbox.read(maildir) == []

        # A burst of failing tasks: each is called with an argument it does not take.
        for _ in range(BURST):
            celery_app.send_task("backoffice.ping", kwargs={"unexpected": 1})
        wait_for(
            lambda: TaskResult.objects.filter(task_name="backoffice.ping", status=states.FAILURE).count() == BURST,
            timeout=30,
            message="the failing tasks' results",
        )
        burst_done = timezone.now()
        wait_for(lambda: len(mailbox.read(maildir)) >= 1, timeout=60, message="the alert email")
        wait_for(lambda: len(mailbox.read(maildir)) >= 2, timeout=60, message="the recovery email")
        recovered_at = AlertEvent.objects.get(rule=watched).resolved_at
        assert recovered_at is not None and (recovered_at - burst_done).total_seconds() < 60

        # A few more evaluations after the recovery change nothing.
        wait_for(
            lambda: AlertRule.objects.get(pk=watched.pk).last_evaluated_at > recovered_at + timedelta(seconds=3),
            timeout=30,
            message="three more evaluations",
        )
        wait_for(
            lambda: not AlertNotification.objects.filter(status=AlertNotification.Status.QUEUED).exists(),
            timeout=30,
            message="every queued message to be delivered",
        )
    finally:
        beat.stop()
        worker.stop()

    emails = mailbox.read(maildir)
    assert [(m["to"], m["subject"]) for m in emails] == [
        (["oncall@example.com"], "[Backoffice alert] FIRING: ping failing"),
        (["oncall@example.com"], "[Backoffice alert] RESOLVED: ping failing"),
    ], worker.log()[-3000:]
    bodies = sorted(webhook_receiver.received, key=lambda item: item[1]["at"])
    assert [(path, body["state"], body["rule"], body["threshold"]) for path, body in bodies] == [
        ("/watched", "firing", "ping failing", 3.0),
        ("/watched", "resolved", "ping failing", 3.0),
    ]
    assert bodies[0][1]["value"] >= 3 and bodies[1][1]["value"] < 3
    assert [body["text"] for _, body in bodies] == [m["subject"] for m in emails]

    # The silenced rule fired and recovered too (its history says so) but told no one.
    silenced_event = AlertEvent.objects.get(rule=silenced)
    assert silenced_event.resolved_at is not None
    assert not silenced_event.notifications.exists()
