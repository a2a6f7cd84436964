"""What alerts add to the portal (collected by backoffice.extension_point): the dashboard panel of rules
firing now. Rules, history and notifications are admin models; silencing is a custom admin view."""

from django.utils.translation import gettext_lazy as _

from backoffice.extension_point import Panel

PANELS = [
    Panel(
        key="alerts",
        title=_("Alerts firing now"),
        permission="portal_alerts.view_alertrule",
        template="alerts/panels/firing.html",
        compute="backoffice.alerts.selectors.firing_panel",
        refresh_seconds=30,
        position=35,
    )
]
