from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class BackofficeAdminConfig(admin_apps.AdminConfig):
    default = False
    default_site = "backoffice.sites.BackofficeAdminSite"


class BackofficeConfig(AppConfig):
    name = "backoffice"
    default = True
    verbose_name = _("Backoffice")

    def ready(self):
        from backoffice import extension_point  # noqa: F401 - registers the portal's system checks
