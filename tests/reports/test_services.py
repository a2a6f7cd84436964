"""Report emails: the figures of a fixed period on known data, what each role receives, idempotent sending, the
schedule made with the report, and the preview."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.db import connection
from django_celery_beat.models import PeriodicTask

from backoffice.accounts.roles import ANALYSTS, OPERATORS, OPS
from backoffice.reports import selectors, services
from backoffice.reports.models import Report, ReportDelivery
from backoffice.reports.tasks import report_preview_task, report_send_task
from backoffice.task_registry import task_queue, validate_task_call
from tests.reports.conftest import SEND_AT

pytestmark = pytest.mark.django_db

EXPECTED = {
    "orders": {
        "total": 5,
        "by_status": [
            {"status": "pending", "label": "pending payment", "count": 1},
            {"status": "paid", "label": "paid", "count": 2},
            {"status": "fulfilled", "label": "fulfilled", "count": 1},
            {"status": "expired", "label": "expired", "count": 1},
        ],
    },
    "revenue": {"total": Decimal("40.00"), "paid_orders": 3},
    "refunds": {"flagged": 1},
    "points": {"awarded": 50, "redeemed": 10},
    "tasks": [
        {"task_name": "orders.expire_overdue", "success": 3, "failure": 1},
        {"task_name": "points.outbox_relay", "success": 2, "failure": 0},
    ],
    "exports": {"total": 1, "by_status": {"queued": 1}},
    "outbox": {"backlog": 2, "oldest_seconds": 6 * 3600 + 60},
}


def _report(*users, kind=Report.Kind.DAILY) -> Report:
    return services.report_create(name="Morning digest", kind=kind, subscribers=users)


def test_the_figures_of_a_fixed_day_in_time_zone_match_the_data(known_day):
    period = selectors.report_period(kind=Report.Kind.DAILY, now=SEND_AT)
    assert (period.start, period.end) == (date(2026, 11, 28), date(2026, 11, 29))

    figures = selectors.report_figures(period=period, now=SEND_AT)

    rule_a, rule_b = known_day.rules
    assert figures == EXPECTED | {
        "top_rules": [
            {"rule_id": rule_a.pk, "name": "Daily check-in", "points": 30, "entries": 1},
            {"rule_id": rule_b.pk, "name": "First post", "points": 20, "entries": 1},
        ]
    }


def test_last_week_is_monday_to_sunday_in_time_zone(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    period = selectors.report_period(kind=Report.Kind.WEEKLY, now=SEND_AT)  # Sunday 29 November, 06:00 local
    assert (period.start, period.end) == (date(2026, 11, 16), date(2026, 11, 23))


def test_a_sent_report_shows_each_recipient_what_their_role_may_read(known_day, role_user, mailoutbox):
    analyst, ops = role_user(ANALYSTS), role_user(OPS)
    report = _report(analyst, ops)

    outcome = services.report_send(report_id=report.pk, now=SEND_AT)

    assert outcome.as_result() == {"period_start": "2026-11-28", "sent": 2, "skipped": 0, "failed": 0}
    by_recipient = {message.to[0]: message for message in mailoutbox}
    assert set(by_recipient) == {analyst.email, ops.email}
    for message in mailoutbox:
        assert isinstance(message, EmailMultiAlternatives)
        assert message.subject == "Morning digest: 2026-11-28"
        assert [kind for _, kind in message.alternatives] == ["text/html"]
        html = message.alternatives[0][0]
        assert "<script" not in html and "src=" not in html  # nothing a mail client would fetch or run
        assert "/admin/orders/order/?created_at__gte=2026-11-28T00%3A00%3A00%2B08%3A00" in html
        assert "Orders: 5\n  pending payment: 1\n  paid: 2\n  fulfilled: 1\n  expired: 1\n" in message.body
        assert "orders.expire_overdue: 3 / 1" in message.body
        assert "1 order is flagged for refund." in message.body

    analyst_mail = by_recipient[analyst.email]
    assert "Revenue: 40.00 (from 3 paid orders)" in analyst_mail.body
    assert 'id="revenue">40.00<' in analyst_mail.alternatives[0][0]
    assert "Points: awarded 50, redeemed 10" in analyst_mail.body
    assert "Daily check-in: 30\n  First post: 20\n" in analyst_mail.body

    ops_mail = by_recipient[ops.email]
    for text in (ops_mail.body, ops_mail.alternatives[0][0]):
        assert "Revenue" not in text and "40.00" not in text  # Ops lack the analysts' view_revenue
        assert "Points:" not in text and "Daily check-in" not in text  # nor the ledger
    assert "Points outbox backlog now: 2" in ops_mail.body


def test_an_operator_without_the_analyst_role_gets_no_revenue(known_day, role_user, mailoutbox):
    operator = role_user(OPERATORS)
    report = _report(operator)

    services.report_send(report_id=report.pk, now=SEND_AT)

    (message,) = mailoutbox
    assert "Orders: 5" in message.body
    assert "Revenue" not in message.body and "40.00" not in message.body
    assert "Revenue" not in message.alternatives[0][0] and "40.00" not in message.alternatives[0][0]


def test_sending_the_same_period_again_sends_nothing(known_day, role_user, mailoutbox):
    analyst = role_user(ANALYSTS)
    report = _report(analyst)
    services.report_send(report_id=report.pk, now=SEND_AT)

    again = services.report_send(report_id=report.pk, now=SEND_AT)

    assert again.as_result() == {"period_start": "2026-11-28", "sent": 0, "skipped": 1, "failed": 0}
    assert len(mailoutbox) == 1
    delivery = ReportDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.period_start) == ("sent", 1, date(2026, 11, 28))


def test_a_copy_claimed_by_a_worker_that_died_is_not_sent_again(known_day, role_user, mailoutbox):
    analyst, ops = role_user(ANALYSTS), role_user(OPS)
    report = _report(analyst, ops)
    # A worker claimed the analyst's copy, then was killed before (or while) sending it.
    ReportDelivery.objects.create(report=report, period_start=date(2026, 11, 28), recipient=analyst, claimed_at=SEND_AT)

    outcome = services.report_send(report_id=report.pk, now=SEND_AT)

    assert (outcome.sent, outcome.skipped) == ([ops.username], [analyst.username])
    assert [message.to for message in mailoutbox] == [[ops.email]]


def test_a_failed_copy_is_retried_by_the_task_for_the_same_period_and_sent_once(
    known_day, role_user, mailoutbox, monkeypatch
):
    analyst, ops = role_user(ANALYSTS), role_user(OPS)
    report = _report(analyst, ops)
    real_send = EmailMultiAlternatives.send
    refusals = []

    def flaky_send(message, fail_silently=False):
        if message.to == [ops.email] and not refusals:
            refusals.append(message.to)
            raise ConnectionError("mail server went away")
        return real_send(message, fail_silently=fail_silently)

    monkeypatch.setattr(EmailMultiAlternatives, "send", flaky_send)

    # The schedule's own call (no period) at 06:00; Celery runs the retry in place when a task is applied eagerly.
    with time_machine.travel(SEND_AT, tick=False):
        result = report_send_task.apply(kwargs={"report_id": report.pk})

    assert result.successful(), result.traceback
    assert result.result == {"period_start": "2026-11-28", "sent": 1, "skipped": 1, "failed": 0}
    assert sorted(message.to[0] for message in mailoutbox) == sorted([analyst.email, ops.email])
    assert refusals == [[ops.email]]
    ops_copy = ReportDelivery.objects.get(recipient=ops)
    assert (ops_copy.status, ops_copy.attempts, ops_copy.error) == ("sent", 2, "")


def test_a_copy_that_keeps_failing_is_visible_as_failed(known_day, role_user, mailoutbox, monkeypatch):
    analyst = role_user(ANALYSTS)
    report = _report(analyst)

    def refuse(message, fail_silently=False):
        raise ConnectionError("mail server went away")

    monkeypatch.setattr(EmailMultiAlternatives, "send", refuse)
    with pytest.raises(services.ReportNotSent):
        services.report_send(report_id=report.pk, now=SEND_AT)

    delivery = ReportDelivery.objects.get()
    assert (delivery.status, delivery.error) == ("failed", "ConnectionError: mail server went away")
    assert mailoutbox == []


def test_a_report_is_created_with_its_schedule_which_staff_may_run(db):
    report = _report(kind=Report.Kind.WEEKLY)

    task = PeriodicTask.objects.get(pk=report.periodic_task_id)
    assert (task.task, task.kwargs, task.enabled) == ("reports.send", f'{{"report_id": {report.pk}}}', True)
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("0", "6", "1")
    validate_task_call(task.task, [], {"report_id": report.pk})  # declared staff-runnable, the kwargs bind
    assert task_queue(task.task) == "reports"  # the long-work worker's queue, by settings' routes

    services.report_delete(report=report)

    assert not PeriodicTask.objects.filter(pk=task.pk).exists()


def test_the_report_page_sends_me_a_preview(known_day, role_user, client, on_commit, mailoutbox):
    ops = role_user(OPS)
    report = _report()
    client.force_login(ops)

    with on_commit() as callbacks:
        response = client.post(f"/admin/portal_reports/report/{report.pk}/preview/")

    assert response.status_code == 302
    assert len(callbacks) == 1  # the preview task, published after commit
    with time_machine.travel(SEND_AT, tick=False):
        report_preview_task.run(report_id=report.pk, user_id=ops.pk)
    (message,) = mailoutbox
    assert (message.to, message.subject) == ([ops.email], "[Preview] Morning digest: 2026-11-28")
    assert "Revenue" not in message.body
    assert not ReportDelivery.objects.exists()  # a preview claims no period


def test_a_preview_for_staff_without_an_address_is_a_form_error(db, role_user, client):
    ops = role_user(OPS)
    ops.email = ""
    ops.save()
    report = _report()
    client.force_login(ops)

    response = client.post(f"/admin/portal_reports/report/{report.pk}/preview/", follow=True)

    assert response.status_code == 200
    assert "no email address" in response.content.decode()
    assert mail.outbox == []


@pytest.mark.django_db(transaction=True)
def test_workers_racing_for_the_same_period_send_each_copy_once(role_user, mailoutbox):
    analyst, ops = role_user(ANALYSTS), role_user(OPS)
    report = _report(analyst, ops)
    racers = 4
    start = threading.Barrier(racers)

    def send(_):
        try:
            start.wait(timeout=10)
            return services.report_send(report_id=report.pk, now=SEND_AT)
        finally:
            connection.close()

    with ThreadPoolExecutor(racers) as pool:
        outcomes = list(pool.map(send, range(racers)))

    assert sorted(name for outcome in outcomes for name in outcome.sent) == sorted([analyst.username, ops.username])
    assert sum(len(outcome.skipped) for outcome in outcomes) == 2 * racers - 2
    assert sorted(message.to[0] for message in mailoutbox) == sorted([analyst.email, ops.email])


def test_the_dashboard_panel_counts_last_weeks_copies_and_names_the_failures(role_user):
    analyst, ops = role_user(ANALYSTS), role_user(OPS)
    report = _report()
    for user, status, error in ((analyst, "sent", ""), (ops, "failed", "SMTPServerDisconnected: gone")):
        ReportDelivery.objects.create(
            report=report,
            period_start=date(2026, 11, 28),
            recipient=user,
            status=status,
            error=error,
            claimed_at=SEND_AT,
        )
    ReportDelivery.objects.create(  # eight days before: out of the panel's week
        report=report,
        period_start=date(2026, 11, 20),
        recipient=ops,
        status="failed",
        claimed_at=SEND_AT - timedelta(8),
    )

    figures = selectors.deliveries_panel_figures(now=SEND_AT)

    assert figures == {
        "sent": 1,
        "sending": 0,
        "failed": 1,
        "failures": [
            {"report": "Morning digest", "period_start": "2026-11-28", "error": "SMTPServerDisconnected: gone"}
        ],
    }


def test_an_operator_adding_a_report_in_the_admin_gets_its_schedule(role_user, client):
    operator = role_user(OPERATORS)
    group = operator.groups.get()
    client.force_login(operator)

    response = client.post(
        "/admin/portal_reports/report/add/", {"name": "Weekly for operators", "kind": "weekly", "groups": [group.pk]}
    )

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    report = Report.objects.get(name="Weekly for operators")
    assert list(report.groups.all()) == [group]
    assert report.periodic_task.task == "reports.send"
    assert report.periodic_task.crontab.day_of_week == "1"


def test_a_report_with_a_name_taken_is_a_form_error_and_makes_no_schedule(role_user, client):
    operator = role_user(OPERATORS)
    _report()
    schedules = PeriodicTask.objects.count()
    client.force_login(operator)

    response = client.post("/admin/portal_reports/report/add/", {"name": "Morning digest", "kind": "daily"})

    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["name"]
    assert (Report.objects.count(), PeriodicTask.objects.count()) == (1, schedules)
