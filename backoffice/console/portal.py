"""What the task console adds to the portal (collected by backoffice.extension_point)."""

from django.utils.translation import gettext_lazy as _

from backoffice.extension_point import Page, Urls

URLS = [Urls("admin/console/", "backoffice.console.urls")]
PAGES = [Page("console:index", _("Task console"), "portal_console.view_taskrun", position=10)]
