from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SchedulesConfig(AppConfig):
    name = "backoffice.schedules"
    label = "portal_schedules"
    verbose_name = _("Schedules")

    def ready(self):
        from backoffice.schedules import checks  # noqa: F401 - registers the system checks
