"""What the audit view adds to the portal (collected by backoffice.extension_point)."""

from django.utils.translation import gettext_lazy as _

from backoffice.extension_point import Page, Urls

URLS = [Urls("admin/audit/", "backoffice.audit.urls")]
PAGES = [Page("audit:index", _("Audit log"), "admin.view_logentry", position=40)]
