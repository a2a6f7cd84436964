from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConsoleConfig(AppConfig):
    name = "backoffice.console"
    label = "portal_console"
    verbose_name = _("Task console")
