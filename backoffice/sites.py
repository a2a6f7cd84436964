"""The portal's admin site: the index is the dashboard, and the custom pages join the navigation."""

from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

# Custom pages shown in the admin's app list and sidebar, to the users who may open them:
# (URL name, label, permission the page requires).
PORTAL_PAGES = [
    ("console:index", _("Task console"), "portal_console.view_taskrun"),
    ("ops:workers", _("Workers"), "portal_ops.view_ops"),
    ("ops:flower", _("Flower"), "portal_ops.view_ops"),
    ("audit:index", _("Audit log"), "admin.view_logentry"),
]


class BackofficeAdminSite(admin.AdminSite):
    site_header = _("Backoffice")
    site_title = _("Backoffice")
    index_title = _("Dashboard")
    index_template = "admin/dashboard.html"

    def index(self, request, extra_context=None):
        from backoffice.ops.dashboard import dashboard_panels

        context = {"panels": dashboard_panels(request.user), **(extra_context or {})}
        return super().index(request, extra_context=context)

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
        for url_name, label, permission in PORTAL_PAGES:
            if not request.user.has_perm(permission):
                continue
            try:
                url = reverse(url_name)
            except NoReverseMatch:  # the page's app is not wired in this deployment
                continue
            pages.append(
                {
                    "name": label,
                    "object_name": url_name.replace(":", "_"),
                    "admin_url": url,
                    "add_url": None,
                    "view_only": True,
                    "perms": {"view": True},
                }
            )
        return pages
