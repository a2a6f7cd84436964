from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OpsConfig(AppConfig):
    name = "backoffice.ops"
    label = "portal_ops"
    verbose_name = _("Operations")
