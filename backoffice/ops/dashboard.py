"""The admin index as a dashboard: reads the cached figures of the declared panels (one query) and shapes them.

Panels are declared by the apps that own what they show, in their portal.py (see backoffice/extension_point.py);
each is shown to the users who hold its permission. ops.dashboard_refresh computes and stores the figures
(backoffice/ops/services.py); this module only reads them.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from backoffice.charts import bar_chart, parse_when
from backoffice.extension_point import Panel as PanelDeclaration
from backoffice.extension_point import collect
from backoffice.ops.models import DashboardPanel


@dataclass
class Panel:
    """A declared panel as one user sees it now: its stored figures, shaped, and their age."""

    declaration: PanelDeclaration
    data: dict = field(default_factory=dict)
    refreshed_at: datetime | None = None
    age_seconds: int | None = None

    @property
    def key(self) -> str:
        return self.declaration.key

    @property
    def title(self):
        return self.declaration.title

    @property
    def template(self) -> str:
        return self.declaration.template

    @property
    def is_stale(self) -> bool:
        return self.age_seconds is None or self.age_seconds > self.declaration.stale_after_seconds

    @property
    def age(self) -> str:
        seconds = self.age_seconds or 0
        if seconds < 120:
            return _("%(n)d s") % {"n": seconds}
        if seconds < 7200:
            return _("%(n)d min") % {"n": seconds // 60}
        return _("%(n)d h") % {"n": seconds // 3600}


def visible_panels(user) -> list[str]:
    return [panel.key for panel in collect().panels if user.has_perm(panel.permission)]


def dashboard_panels(user, *, now: datetime | None = None) -> list[Panel]:
    """The panels this user may see, from the cache table only."""
    now = now or timezone.now()
    declared = [panel for panel in collect().panels if user.has_perm(panel.permission)]
    if not declared:
        return []
    stored = {row.key: row for row in DashboardPanel.objects.filter(key__in={p.source_key for p in declared})}
    panels = []
    for declaration in declared:
        row = stored.get(declaration.source_key)
        panel = Panel(declaration=declaration)
        if row is not None:
            panel.data = declaration.shaped(row.data)
            panel.refreshed_at = row.refreshed_at
            panel.age_seconds = max(0, int((now - row.refreshed_at).total_seconds()))
        panels.append(panel)
    return panels


# -- shaping of ops' own panels (declared in backoffice/ops/portal.py) ----------------------------------------------


def tasks_panel_shape(data: dict) -> dict:
    data["labels"] = [parse_when(hour).strftime("%H:00") for hour in data.get("hours", [])]
    data["total_success"] = sum(data.get("success", []))
    data["total_failure"] = sum(data.get("failure", []))
    data["chart"] = bar_chart(
        data["labels"],
        [(str(_("succeeded")), "ok", data.get("success", [])), (str(_("failed")), "fail", data.get("failure", []))],
    )
    for row in data.get("slowest", []):
        row["date_done"] = parse_when(row["date_done"])
    return data


def beat_panel_shape(data: dict) -> dict:
    data["last_tick"] = parse_when(data.get("last_tick"))
    for run in data.get("next_runs", []):
        run["due"] = parse_when(run["due"])
    return data
