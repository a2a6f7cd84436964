from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotifyConfig(AppConfig):
    name = "backoffice.notify"
    label = "portal_notify"
    verbose_name = _("Notifications")
