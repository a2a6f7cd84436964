"""The admin index as a dashboard: reads the cached panels (one query) and shapes them for the template.

Each panel is shown to the users who may see its source: task history to those who read task results,
workers and queues to ops, schedules to those who read schedules, points and orders to their readers.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from backoffice.ops.models import DashboardPanel

STALE_AFTER_SECONDS = 180  # three missed refreshes (every 60 s): the panel says its figures are old

PANEL_TITLES = {
    "pipeline": _("Points events"),
    "points": _("Points"),
    "orders": _("Orders"),
    "tasks": _("Tasks, last 24 hours"),
    "workers": _("Workers"),
    "queues": _("Queues"),
    "beat": _("Beat"),
}
PANEL_PERMISSIONS = {
    "pipeline": "points.view_pendingevent",  # capture and outbox: ops and operators watch the pipeline
    "points": "points.view_ledgerentry",
    "orders": "orders.view_order",
    "tasks": "django_celery_results.view_taskresult",
    "workers": "portal_ops.view_ops",
    "queues": "portal_ops.view_ops",
    "beat": "django_celery_beat.view_periodictask",
}


# A shown panel and the stored figures it reads, where they differ (both points panels read one row).
PANEL_SOURCES = {"pipeline": "points"}


@dataclass
class Panel:
    key: str
    title: str
    data: dict = field(default_factory=dict)
    refreshed_at: datetime | None = None
    age_seconds: int | None = None

    @property
    def is_stale(self) -> bool:
        return self.age_seconds is None or self.age_seconds > STALE_AFTER_SECONDS

    @property
    def age(self) -> str:
        seconds = self.age_seconds or 0
        if seconds < 120:
            return _("%(n)d s") % {"n": seconds}
        if seconds < 7200:
            return _("%(n)d min") % {"n": seconds // 60}
        return _("%(n)d h") % {"n": seconds // 3600}


def visible_panels(user) -> list[str]:
    return [key for key, permission in PANEL_PERMISSIONS.items() if user.has_perm(permission)]


def dashboard_panels(user, *, now: datetime | None = None) -> list[Panel]:
    """The panels this user may see, from the cache table only."""
    now = now or timezone.now()
    keys = visible_panels(user)
    if not keys:
        return []
    stored = {
        row.key: row for row in DashboardPanel.objects.filter(key__in={PANEL_SOURCES.get(key, key) for key in keys})
    }
    panels = []
    for key in keys:
        row = stored.get(PANEL_SOURCES.get(key, key))
        panel = Panel(key=key, title=PANEL_TITLES[key])
        if row is not None:
            panel.data = _shape(key, row.data)
            panel.refreshed_at = row.refreshed_at
            panel.age_seconds = max(0, int((now - row.refreshed_at).total_seconds()))
        panels.append(panel)
    return panels


CHART_WIDTH = 480
CHART_HEIGHT = 80


def bar_chart(labels: list[str], series: list[tuple[str, str, list[int]]], *, height: int = CHART_HEIGHT) -> dict:
    """Geometry of a stacked SVG bar chart: `series` are (name, css class, one value per label)."""
    count = len(labels) or 1
    totals = [sum(values[i] for _, _, values in series if i < len(values)) for i in range(len(labels))]
    peak = max(totals, default=0)
    slot = CHART_WIDTH / count
    bars = []
    for i, label in enumerate(labels):
        top = height
        for name, css_class, values in series:
            value = values[i] if i < len(values) else 0
            if value <= 0:
                continue
            bar_height = max(1.0, height * value / peak)
            top -= bar_height
            bars.append(
                {
                    "x": round(i * slot, 1),
                    "y": round(top, 1),
                    "width": round(max(1.0, slot - 1), 1),
                    "height": round(bar_height, 1),
                    "css_class": css_class,
                    "tip": f"{label} {name}: {value}",
                }
            )
    return {
        "bars": bars,
        "width": CHART_WIDTH,
        "height": height,
        "small": height < 40,  # a sparkline in a table row: no axis labels
        "peak": peak,
        "first": labels[0] if labels else "",
        "last": labels[-1] if labels else "",
    }


def _when(value):
    return parse_datetime(value) if isinstance(value, str) else value


def _shape(key: str, data: dict) -> dict:
    """Parse stored ISO timestamps and derive chart labels; nothing here touches the database."""
    data = dict(data)
    if key == "tasks":
        data["labels"] = [_when(hour).strftime("%H:00") for hour in data.get("hours", [])]
        data["total_success"] = sum(data.get("success", []))
        data["total_failure"] = sum(data.get("failure", []))
        data["chart"] = bar_chart(
            data["labels"],
            [(str(_("succeeded")), "ok", data.get("success", [])), (str(_("failed")), "fail", data.get("failure", []))],
        )
        for row in data.get("slowest", []):
            row["date_done"] = _when(row["date_done"])
    elif key == "beat":
        data["last_tick"] = _when(data.get("last_tick"))
        for run in data.get("next_runs", []):
            run["due"] = _when(run["due"])
    elif key in ("points", "orders"):
        data["labels"] = [day[5:] for day in data.get("days", [])]  # MM-DD
        if key == "points":
            data["total_awarded"] = sum(data.get("awarded", []))
            data["total_redeemed"] = sum(data.get("redeemed", []))
            data["awarded_chart"] = bar_chart(data["labels"], [(str(_("awarded")), "ok", data.get("awarded", []))])
            data["redeemed_chart"] = bar_chart(data["labels"], [(str(_("redeemed")), "warn", data.get("redeemed", []))])
        else:
            for row in data.get("by_status", []):
                row["total"] = sum(row["counts"])
                row["chart"] = bar_chart(data["labels"], [(row["status"], "ok", row["counts"])], height=24)
    return data
