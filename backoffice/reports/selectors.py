"""Reads behind a report email: the business period, its figures, and the share one recipient may read.

Every query is bounded by an indexed column (orders' and ledger entries' `created_at`, task results'
`date_done`, export jobs' `created_at`, the partial index on orders flagged for refund) or counts a small table
(the points outbox), so a report costs the same on a large database as on a small one.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from celery import states
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, Q, Sum
from django.urls import reverse
from django.utils import timezone
from django_celery_results.models import TaskResult

from backoffice.exports.models import ExportJob
from backoffice.reports.models import Report, ReportDelivery
from orders.models import Order
from points.models import LedgerEntry, PendingEvent

TOP_RULES = 5  # rules listed by points awarded
TOP_TASKS = 10  # task names listed by runs
REVENUE_STATUSES = (Order.Status.PAID, Order.Status.FULFILLED)  # money taken and kept
DEFAULT_PORTAL_URL = "http://127.0.0.1:8000"  # settings.PORTAL_URL, when set, is where the email's links point

# The permission each part of a report needs: a recipient's email holds only the parts their role may read.
SECTION_PERMISSIONS = {
    "orders": "orders.view_order",
    "revenue": "portal_reports.view_revenue",
    "refunds": "orders.view_order",
    "points": "points.view_ledgerentry",
    "top_rules": "points.view_rule",
    "tasks": "django_celery_results.view_taskresult",
    "exports": "portal_exports.view_exportjob",
    "outbox": "points.view_pendingevent",
}


@dataclass(frozen=True)
class Period:
    """Local calendar days [start, end) in TIME_ZONE."""

    kind: str
    start: date
    end: date

    @property
    def starts_at(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.start, time.min))

    @property
    def ends_at(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.end, time.min))

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)


def report_period(*, kind: str, now: datetime | None = None, start: date | None = None) -> Period:
    """The period a report sent at `now` covers: yesterday, or last Monday to Sunday, in TIME_ZONE."""
    days = 7 if kind == Report.Kind.WEEKLY else 1
    if start is None:
        today = timezone.localdate(now or timezone.now())
        start = today - timedelta(days=today.weekday() + 7) if kind == Report.Kind.WEEKLY else today - timedelta(1)
    return Period(kind=kind, start=start, end=start + timedelta(days=days))


def report_figures(*, period: Period, now: datetime | None = None) -> dict:
    """Every figure of the period, for every section; `figures_for` then keeps what one recipient may read."""
    now = now or timezone.now()
    since, until = period.starts_at, period.ends_at
    orders = Order.objects.filter(created_at__gte=since, created_at__lt=until)
    by_status = {row["status"]: row for row in orders.values("status").annotate(count=Count("id"), total=Sum("total"))}
    ledger = LedgerEntry.objects.filter(created_at__gte=since, created_at__lt=until)
    sums = dict(
        ledger.filter(kind__in=[LedgerEntry.Kind.AWARD, LedgerEntry.Kind.REDEEM])
        .values("kind")
        .annotate(total=Sum("amount"))
        .values_list("kind", "total")
        .order_by()
    )
    top_rules = (
        ledger.filter(kind=LedgerEntry.Kind.AWARD, rule__isnull=False)
        .values("rule_id", "rule__name")
        .annotate(points=Sum("amount"), entries=Count("id"))
        .order_by("-points", "rule_id")[:TOP_RULES]
    )
    task_rows = (
        TaskResult.objects.filter(
            date_done__gte=since, date_done__lt=until, status__in=[states.SUCCESS, states.FAILURE]
        )
        .values("task_name", "status")
        .annotate(count=Count("id"))
        .order_by()
    )
    tasks: dict[str, dict[str, int]] = {}
    for row in task_rows:
        totals = tasks.setdefault(row["task_name"] or "?", {"success": 0, "failure": 0})
        totals["success" if row["status"] == states.SUCCESS else "failure"] += row["count"]
    exports = dict(
        ExportJob.objects.filter(created_at__gte=since, created_at__lt=until)
        .values("status")
        .annotate(count=Count("id"))
        .values_list("status", "count")
        .order_by()
    )
    oldest = PendingEvent.objects.order_by("created_at").values_list("created_at", flat=True).first()
    revenue = sum((by_status[s]["total"] or Decimal("0") for s in REVENUE_STATUSES if s in by_status), Decimal("0"))
    return {
        "orders": {
            "total": sum(row["count"] for row in by_status.values()),
            "by_status": [
                {"status": status, "label": str(label), "count": by_status[status]["count"]}
                for status, label in Order.Status.choices
                if status in by_status
            ],
        },
        "revenue": {
            "total": revenue,
            "paid_orders": sum(by_status[s]["count"] for s in REVENUE_STATUSES if s in by_status),
        },
        "refunds": {"flagged": Order.objects.filter(needs_refund=True).count()},
        "points": {
            "awarded": sums.get(LedgerEntry.Kind.AWARD) or 0,
            "redeemed": -(sums.get(LedgerEntry.Kind.REDEEM) or 0),  # redemptions are negative amounts
        },
        "top_rules": [
            {"rule_id": row["rule_id"], "name": row["rule__name"], "points": row["points"], "entries": row["entries"]}
            for row in top_rules
        ],
        "tasks": [
            {"task_name": name, **totals}
            for name, totals in sorted(tasks.items(), key=lambda item: (-sum(item[1].values()), item[0]))[:TOP_TASKS]
        ],
        "exports": {"total": sum(exports.values()), "by_status": exports},
        "outbox": {
            "backlog": PendingEvent.objects.count(),
            "oldest_seconds": max(0, int((now - oldest).total_seconds())) if oldest else None,
        },
    }


def figures_for(*, user, figures: dict) -> dict:
    """Only the sections this user's role may read (a section missing from the map is never shown)."""
    return {
        key: value
        for key, value in figures.items()
        if key in SECTION_PERMISSIONS and user.is_active and user.has_perm(SECTION_PERMISSIONS[key])
    }


def report_recipients(*, report: Report) -> list:
    """Active staff with an address, subscribed themselves or through a group, each once."""
    return list(
        get_user_model()
        .objects.filter(Q(pk__in=report.subscribers.values("pk")) | Q(groups__in=report.groups.values("pk")))
        .filter(is_active=True, is_staff=True)
        .exclude(email="")
        .distinct()
        .order_by("pk")
    )


def portal_url(path: str, query: dict | None = None) -> str:
    base = getattr(settings, "PORTAL_URL", "") or DEFAULT_PORTAL_URL
    return base.rstrip("/") + path + (f"?{urlencode(query)}" if query else "")


def report_links(*, period: Period) -> dict:
    """Links back to the portal's lists, filtered to the period (admin filters on the models' own fields)."""
    since, until = period.starts_at.isoformat(), period.ends_at.isoformat()
    return {
        "orders": portal_url(
            reverse("admin:orders_order_changelist"), {"created_at__gte": since, "created_at__lt": until}
        ),
        "refunds": portal_url(reverse("admin:orders_order_changelist"), {"needs_refund__exact": "1"}),
        "points": portal_url(
            reverse("admin:points_ledgerentry_changelist"), {"created_at__gte": since, "created_at__lt": until}
        ),
        "tasks": portal_url(
            reverse("admin:django_celery_results_taskresult_changelist"),
            {"date_done__gte": since, "date_done__lt": until},
        ),
        "exports": portal_url(reverse("admin:portal_exports_exportjob_changelist")),
        "outbox": portal_url(reverse("admin:points_pendingevent_changelist")),
    }


def deliveries_panel_figures(*, now: datetime) -> dict:
    """Report copies of the last 7 days by status, and the failed ones (the dashboard's report panel)."""
    recent = ReportDelivery.objects.filter(claimed_at__gte=now - timedelta(days=7))
    counts = dict(recent.values("status").annotate(count=Count("id")).values_list("status", "count").order_by())
    failed = recent.filter(status=ReportDelivery.Status.FAILED).select_related("report")[:5]
    return {
        "sent": counts.get(ReportDelivery.Status.SENT, 0),
        "sending": counts.get(ReportDelivery.Status.SENDING, 0),
        "failed": counts.get(ReportDelivery.Status.FAILED, 0),
        "failures": [
            {"report": row.report.name, "period_start": row.period_start.isoformat(), "error": row.error}
            for row in failed
        ],
    }
