"""The portal's admin site: the index is the dashboard, and the declared pages join the navigation.

What appears here is declared by the apps themselves, in their `portal.py` (see backoffice/extension_point.py);
this module imports no feature app.
"""

from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from backoffice.extension_point import collect


class BackofficeAdminSite(admin.AdminSite):
    site_header = _("Backoffice")
    site_title = _("Backoffice")
    index_title = _("Dashboard")
    index_template = "admin/dashboard.html"

    def index(self, request, extra_context=None):
        context = {"panels": self.dashboard_panels(request), **(extra_context or {})}
        return super().index(request, extra_context=context)

    @staticmethod
    def dashboard_panels(request) -> list:
        """The declared panels this user may see, with their figures, from the app that declares DASHBOARD."""
        reader = collect().dashboard
        return import_string(reader)(request.user) if reader else []

    def get_app_list(self, request, app_label=None):
        app_list = super().get_app_list(request, app_label)
        if app_label is None:
            pages = self._portal_pages(request)
            if pages:
                app_list.append(
                    {
                        "name": _("Operations"),
                        "app_label": "portal_pages",
                        "app_url": pages[0]["admin_url"],
                        "has_module_perms": True,
                        "models": pages,
                    }
                )
        return app_list

    @staticmethod
    def _portal_pages(request) -> list[dict]:
        pages = []
        for page in collect().pages:
            if not request.user.has_perm(page.permission):
                continue
            try:
                url = reverse(page.url_name)
            except NoReverseMatch:  # the page's app is not wired in this deployment
                continue
            pages.append(
                {
                    "name": page.label,
                    "object_name": page.url_name.replace(":", "_"),
                    "admin_url": url,
                    "add_url": None,
                    "view_only": True,
                    "perms": {"view": True},
                }
            )
        return pages
