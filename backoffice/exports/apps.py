from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ExportsConfig(AppConfig):
    name = "backoffice.exports"
    label = "portal_exports"
    verbose_name = _("Exports")

    def ready(self):
        from backoffice.exports import checks  # noqa: F401 - registers the system check
