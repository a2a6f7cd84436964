"""What operations add to the portal (collected by backoffice.extension_point): the workers and Flower pages,
the workers and queues panels, and the dashboard's reader of every app's stored panel figures."""

from django.utils.translation import gettext_lazy as _

from backoffice.extension_point import Page, Urls

URLS = [Urls("ops/", "backoffice.ops.urls")]  # outside admin/: nginx routes /ops/flower/ (deploy/nginx.conf)
PAGES = [
    Page("ops:workers", _("Workers"), "portal_ops.view_ops", position=20),
    Page("ops:flower", _("Flower"), "portal_ops.view_ops", position=30),
]
DASHBOARD = "backoffice.ops.dashboard.dashboard_panels"
