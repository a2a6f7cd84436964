"""URL wiring: each feature's pages are mounted from its own portal.py; the admin site serves the rest."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from backoffice.extension_point import portal_urlpatterns
from backoffice.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    *portal_urlpatterns(),  # before the admin's catch-all: admin/console/, admin/exports/, ops/, ...
    path("admin/", admin.site.urls),
    path("api/points/", include("points.urls")),
    path("api/", include("orders.urls")),
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
]

handler403 = "backoffice.accounts.views.permission_denied"
