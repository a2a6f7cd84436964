"""State changes of report emails: a report with its schedule, subscriptions, and sending.

Sending is idempotent per (report, period, recipient): each copy is claimed by inserting its ReportDelivery row
(unique) before the email leaves, so a retried task, a redelivered message or a second worker sends nothing twice.
A copy whose send failed may be claimed again by one conditional update; a worker killed between the claim and the
send leaves the row "sending", shown in the portal, rather than risk a second copy.

Services import tasks at the top; each task imports its service inside the function body (as in every app).
"""

import logging
from dataclasses import dataclass, field
from datetime import date

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _
from django_celery_beat.models import PeriodicTask

from backoffice.reports import selectors
from backoffice.reports.models import Report, ReportDelivery
from backoffice.reports.tasks import report_preview_task
from backoffice.schedules.defaults import DefaultSchedule
from backoffice.schedules.services import periodic_tasks_delete, schedules_install_defaults

logger = logging.getLogger(__name__)

SEND_TASK = "reports.send"
# Sent after the period closed and the night's sweeps ran; staff move it on the schedule like any other.
DEFAULT_CRONTAB = {
    Report.Kind.DAILY: {"minute": "0", "hour": "6"},
    Report.Kind.WEEKLY: {"minute": "0", "hour": "6", "day_of_week": "1"},
}
ERROR_LENGTH = 500  # ReportDelivery.error's max_length


class ReportNotSent(Exception):
    """Some copies failed; the task retries the same period (copies already sent are skipped)."""

    def __init__(self, *, period_start: date, failed: int):
        super().__init__(f"{failed} report copies failed for the period starting {period_start.isoformat()}")
        self.period_start, self.failed = period_start, failed


@dataclass
class SendOutcome:
    period_start: date
    sent: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def as_result(self) -> dict:
        """The task's stored result: counts only (no addresses in results that staff read)."""
        return {
            "period_start": self.period_start.isoformat(),
            "sent": len(self.sent),
            "skipped": len(self.skipped),
            "failed": len(self.failed),
        }


# -- a report and its schedule ---------------------------------------------------------------------------------


def schedule_name(report: Report) -> str:
    return _("Report email #%(id)d: %(name)s") % {"id": report.pk, "name": report.name}


@transaction.atomic
def report_schedule_ensure(*, report: Report) -> PeriodicTask:
    """Give the report its schedule (created by the schedules app's service, then staff's to edit)."""
    if report.periodic_task_id:
        return report.periodic_task
    name = schedule_name(report)
    schedules_install_defaults(
        defaults=[
            DefaultSchedule(
                name=name,
                task=SEND_TASK,
                description=_("Sends the report email “%(name)s” to its subscribers.") % {"name": report.name},
                crontab=DEFAULT_CRONTAB[report.kind],
                kwargs={"report_id": report.pk},
            )
        ]
    )
    report.periodic_task = PeriodicTask.objects.get(name=name)
    report.save(update_fields=["periodic_task"])
    return report.periodic_task


@transaction.atomic
def report_create(*, name: str, kind: str, subscribers=(), groups=()) -> Report:
    report = Report(name=name, kind=kind)
    report.full_clean()
    report.save()
    report.subscribers.set(subscribers)
    report.groups.set(groups)
    report_schedule_ensure(report=report)
    return report


@transaction.atomic
def report_delete(*, report: Report) -> None:
    """Delete the report and its schedule (beat is told by the schedules service)."""
    if report.periodic_task_id:
        periodic_tasks_delete(ids=[report.periodic_task_id])
    report.delete()


def report_subscribe(*, reports, user, subscribed: bool) -> int:
    with transaction.atomic():
        for report in reports:
            (report.subscribers.add if subscribed else report.subscribers.remove)(user)
    return len(reports)


# -- sending ---------------------------------------------------------------------------------------------------


def report_message(*, report: Report, period: selectors.Period, user, figures: dict) -> EmailMultiAlternatives:
    """One recipient's email: HTML with CSS bars and a plain-text alternative, holding only what they may read."""
    readable = selectors.figures_for(user=user, figures=figures)
    context = {
        "report": report,
        "period": period,
        "recipient": user,
        "figures": readable,
        "links": selectors.report_links(period=period),
        "bars": _bars(readable),
        "portal_url": selectors.portal_url("/admin/"),
        "time_zone": settings.TIME_ZONE,
    }
    subject = _("%(report)s: %(start)s – %(end)s") % {
        "report": report.name,
        "start": period.start.isoformat(),
        "end": period.last_day.isoformat(),
    }
    if period.start == period.last_day:
        subject = _("%(report)s: %(day)s") % {"report": report.name, "day": period.start.isoformat()}
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("reports/email/report.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
    )
    message.attach_alternative(render_to_string("reports/email/report.html", context), "text/html")
    return message


def _bars(figures: dict) -> dict:
    """Widths (percent of the largest value) for the HTML bars: tables with inline styles survive mail clients."""

    def scaled(rows, key):
        peak = max((row[key] for row in rows), default=0)
        return [row | {"width": max(1, round(100 * row[key] / peak)) if peak and row[key] else 0} for row in rows]

    bars = {}
    if "orders" in figures:
        bars["orders"] = scaled(figures["orders"]["by_status"], "count")
    if "top_rules" in figures:
        bars["top_rules"] = scaled(figures["top_rules"], "points")
    if "tasks" in figures:
        peak = max((row["success"] + row["failure"] for row in figures["tasks"]), default=0)
        bars["tasks"] = [
            row
            | {
                "success_width": round(100 * row["success"] / peak) if peak else 0,
                "failure_width": round(100 * row["failure"] / peak) if peak else 0,
            }
            for row in figures["tasks"]
        ]
    if "points" in figures:
        points = figures["points"]
        peak = max(points["awarded"], points["redeemed"], 0)
        bars["points"] = {
            "awarded": round(100 * points["awarded"] / peak) if peak else 0,
            "redeemed": round(100 * points["redeemed"] / peak) if peak else 0,
        }
    return bars


def _claim(*, report: Report, period_start: date, user) -> bool:
    """Take the copy for sending: insert its row, or take back a failed one. False: someone has it already."""
    now = timezone.now()
    with transaction.atomic():
        delivery, created = ReportDelivery.objects.get_or_create(
            report=report, period_start=period_start, recipient=user, defaults={"claimed_at": now}
        )
    if created:
        return True
    return bool(
        ReportDelivery.objects.filter(pk=delivery.pk, status=ReportDelivery.Status.FAILED).update(
            status=ReportDelivery.Status.SENDING, attempts=F("attempts") + 1, claimed_at=now, error=""
        )
    )


def _settle(*, report: Report, period_start: date, user, error: str = "") -> None:
    status = ReportDelivery.Status.FAILED if error else ReportDelivery.Status.SENT
    ReportDelivery.objects.filter(report=report, period_start=period_start, recipient=user).update(
        status=status, error=error[:ERROR_LENGTH], sent_at=None if error else timezone.now()
    )


def report_send(*, report_id: int, period_start: date | None = None, now=None) -> SendOutcome:
    """Send the report for its period to every subscriber who has not had it; raise ReportNotSent if any failed.

    Not one transaction: each copy's claim commits before its email leaves, and its outcome after.
    """
    report = Report.objects.get(pk=report_id)
    period = selectors.report_period(kind=report.kind, now=now, start=period_start)
    outcome = SendOutcome(period_start=period.start)
    figures = selectors.report_figures(period=period, now=now)
    for user in selectors.report_recipients(report=report):
        if not _claim(report=report, period_start=period.start, user=user):
            outcome.skipped.append(user.username)
            continue
        try:
            report_message(report=report, period=period, user=user, figures=figures).send(fail_silently=False)
        except Exception as exc:  # noqa: BLE001 - any failure of one copy is recorded, the others still go out
            logger.warning("report %s for %s to user %s failed: %r", report.pk, period.start, user.pk, exc)
            _settle(report=report, period_start=period.start, user=user, error=f"{type(exc).__name__}: {exc}")
            outcome.failed.append(user.username)
        else:
            _settle(report=report, period_start=period.start, user=user)
            outcome.sent.append(user.username)
    if outcome.failed:
        raise ReportNotSent(period_start=period.start, failed=len(outcome.failed))
    return outcome


def report_preview_send(*, report_id: int, user_id: int, now=None) -> int:
    """Send one staff member the report for its latest period now, as they would receive it (no delivery row)."""
    from django.contrib.auth import get_user_model

    report = Report.objects.get(pk=report_id)
    user = get_user_model().objects.get(pk=user_id)
    period = selectors.report_period(kind=report.kind, now=now)
    message = report_message(report=report, period=period, user=user, figures=selectors.report_figures(period=period))
    message.subject = _("[Preview] %(subject)s") % {"subject": message.subject}
    return message.send(fail_silently=False)


def report_preview_queue(*, report: Report, user) -> None:
    """Queue a preview for `user` after the current transaction commits."""
    if not user.email:
        raise ValueError(_("Your account has no email address: add one to receive a preview."))
    transaction.on_commit(lambda: report_preview_task.delay(report_id=report.pk, user_id=user.pk), robust=True)
