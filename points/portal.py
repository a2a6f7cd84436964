"""What points add to the portal (collected by backoffice.extension_point): the pipeline and points panels of
the dashboard, and the ledger as an export target. Its admin pages are the ModelAdmins in admin.py."""

from django.utils.translation import gettext_lazy as _

from backoffice.extension_point import Panel

PANELS = [
    Panel(
        key="pipeline",  # capture and outbox: ops and operators watch the pipeline
        title=_("Points events"),
        permission="points.view_pendingevent",
        template="points/panels/pipeline.html",
        source="points",  # the figures of the points panel, computed once
        position=10,
    ),
    Panel(
        key="points",
        title=_("Points"),
        permission="points.view_ledgerentry",
        template="points/panels/points.html",
        compute="points.dashboard.points_panel_figures",
        shape="points.dashboard.points_panel_shape",
        position=20,
    ),
]
