from django.contrib import admin
from django.utils.translation import gettext_lazy as _


class BackofficeAdminSite(admin.AdminSite):
    site_header = _("Backoffice")
    site_title = _("Backoffice")
    index_title = _("Dashboard")
