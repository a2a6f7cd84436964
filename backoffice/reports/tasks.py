"""Report email tasks: thin, on the `reports` queue by their `reports.` names (settings' CELERY_TASK_ROUTES).

Services import these tasks at the top; each task imports its service inside the function body.
Arguments are ids and a date only: no address or email body is kept in results, Flower or logs.
"""

from datetime import date

from celery import shared_task

RETRY_COUNTDOWNS = (60, 300, 900, 1800, 3600)  # a mail server down for an hour still gets the report out


@shared_task(name="reports.send", bind=True, staff_runnable=True, max_retries=len(RETRY_COUNTDOWNS))
def report_send_task(self, report_id: int, period_start: str | None = None) -> dict:
    """Send a report to its subscribers for the period just closed (or the period starting `period_start`)."""
    from backoffice.reports.services import ReportNotSent, report_send

    try:
        start = date.fromisoformat(period_start) if period_start else None
        return report_send(report_id=report_id, period_start=start).as_result()
    except ReportNotSent as exc:
        # Retry the same period even if the clock passed midnight meanwhile; sent copies are skipped.
        countdown = RETRY_COUNTDOWNS[min(self.request.retries, len(RETRY_COUNTDOWNS) - 1)]
        raise self.retry(
            exc=exc, countdown=countdown, kwargs={"report_id": report_id, "period_start": exc.period_start.isoformat()}
        ) from exc


@shared_task(name="reports.send_preview")
def report_preview_task(*, report_id: int, user_id: int) -> int:
    """Internal: a preview for the staff member who asked for it on the report's page."""
    from backoffice.reports.services import report_preview_send

    return report_preview_send(report_id=report_id, user_id=user_id)
