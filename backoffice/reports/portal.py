"""What report emails add to the portal (see backoffice/extension_point.py): a dashboard panel of recent
deliveries, failures first. The reports themselves are admin pages (Report emails)."""

from django.utils.translation import gettext_lazy as _

from backoffice.extension_point import Panel

PANELS = [
    Panel(
        key="reports",
        title=_("Report emails"),
        permission="portal_reports.view_reportdelivery",
        template="reports/panels/deliveries.html",
        compute="backoffice.reports.selectors.deliveries_panel_figures",
        refresh_seconds=300,
    )
]
