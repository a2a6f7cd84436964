"""Helpers for dashboard panels: server-rendered SVG bar charts (templates/portal/bar_chart.svg draws the
geometry), their day axis, and the timestamps of stored figures.

Shared infrastructure: any app's panel may use it, points and orders included."""

from datetime import date, datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime

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


def last_days(now: datetime, count: int) -> list[date]:
    """The `count` local calendar days ending today, oldest first: a chart's x axis."""
    today = timezone.localdate(now)
    return [today - timedelta(days=count - 1 - i) for i in range(count)]


def parse_when(value):
    """A stored figure's timestamp (ISO text in the JSON cache) as a datetime; None and datetimes pass through."""
    return parse_datetime(value) if isinstance(value, str) else value
