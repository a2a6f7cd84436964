"""The points panels of the portal's dashboard (declared in points/portal.py): their figures, computed in the
periodic refresh task (never in a page request, so they may scan the ledger), and their shaping for the
templates in templates/points/panels/."""

from datetime import datetime, timedelta

from django.db.models import Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from backoffice.charts import bar_chart, last_days
from points.models import ActionRecord, LedgerEntry, PendingEvent


def points_panel_figures(*, now: datetime) -> dict:
    """The capture pipeline (captured, applied, outbox backlog) and points awarded and redeemed per day."""
    days = last_days(now, 30)
    start = timezone.make_aware(datetime.combine(days[0], datetime.min.time()))
    rows = (
        LedgerEntry.objects.filter(created_at__gte=start, kind__in=[LedgerEntry.Kind.AWARD, LedgerEntry.Kind.REDEEM])
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day", "kind")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    index = {day: i for i, day in enumerate(days)}
    awarded = [0] * len(days)
    redeemed = [0] * len(days)
    for row in rows:
        slot = index.get(row["day"])
        if slot is None:
            continue
        if row["kind"] == LedgerEntry.Kind.AWARD:
            awarded[slot] += row["total"] or 0
        else:
            redeemed[slot] += -(row["total"] or 0)  # redemptions are negative amounts
    hour_ago, day_ago = now - timedelta(hours=1), now - timedelta(days=1)
    applied_hour = ActionRecord.objects.filter(occurred_at__gte=hour_ago).count()
    applied_day = ActionRecord.objects.filter(occurred_at__gte=day_ago).count()
    pending_hour = PendingEvent.objects.filter(created_at__gte=hour_ago).count()
    pending_day = PendingEvent.objects.filter(created_at__gte=day_ago).count()
    oldest = PendingEvent.objects.order_by("created_at").values_list("created_at", flat=True).first()
    return {
        "days": [day.isoformat() for day in days],
        "awarded": awarded,
        "redeemed": redeemed,
        "applied_hour": applied_hour,
        "applied_day": applied_day,
        "captured_hour": applied_hour + pending_hour,
        "captured_day": applied_day + pending_day,
        "outbox_backlog": PendingEvent.objects.count(),
        "outbox_oldest_seconds": max(0, int((now - oldest).total_seconds())) if oldest else None,
    }


def points_panel_shape(data: dict) -> dict:
    """Totals and per-day charts of awarded and redeemed points."""
    data["labels"] = [day[5:] for day in data.get("days", [])]  # MM-DD
    data["total_awarded"] = sum(data.get("awarded", []))
    data["total_redeemed"] = sum(data.get("redeemed", []))
    data["awarded_chart"] = bar_chart(data["labels"], [(str(_("awarded")), "ok", data.get("awarded", []))])
    data["redeemed_chart"] = bar_chart(data["labels"], [(str(_("redeemed")), "warn", data.get("redeemed", []))])
    return data
