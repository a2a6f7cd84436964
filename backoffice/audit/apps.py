from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuditConfig(AppConfig):
    name = "backoffice.audit"
    label = "portal_audit"
    verbose_name = _("Audit")
