from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AlertsConfig(AppConfig):
    name = "backoffice.alerts"
    label = "portal_alerts"
    verbose_name = _("Alerts")
