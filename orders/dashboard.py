"""The orders panel of the portal's dashboard (declared in orders/portal.py): its figures, computed in the
periodic refresh task (never in a page request), and their shaping for templates/orders/panels/orders.html."""

from datetime import datetime

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from backoffice.charts import bar_chart, last_days
from orders.models import Order


def orders_panel_figures(*, now: datetime) -> dict:
    """Orders by status per day over 14 days, and orders flagged for refund (a payment they could not take)."""
    days = last_days(now, 14)
    start = timezone.make_aware(datetime.combine(days[0], datetime.min.time()))
    rows = (
        Order.objects.filter(created_at__gte=start)
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day", "status")
        .annotate(count=Count("id"))
        .order_by()
    )
    index = {day: i for i, day in enumerate(days)}
    by_status: dict[str, list[int]] = {}
    for row in rows:
        slot = index.get(row["day"])
        if slot is not None:
            by_status.setdefault(row["status"], [0] * len(days))[slot] += row["count"]
    flagged = Order.objects.filter(needs_refund=True).count()  # cleared when staff record the refund
    return {
        "days": [day.isoformat() for day in days],
        "by_status": [
            {"status": status, "counts": by_status[status]} for status in Order.Status.values if status in by_status
        ],
        "flagged_for_refund": flagged,
    }


def orders_panel_shape(data: dict) -> dict:
    """A per-day sparkline and a total for each status."""
    data["labels"] = [day[5:] for day in data.get("days", [])]  # MM-DD
    for row in data.get("by_status", []):
        row["total"] = sum(row["counts"])
        row["chart"] = bar_chart(data["labels"], [(row["status"], "ok", row["counts"])], height=24)
    return data
