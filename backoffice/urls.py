"""URL wiring: each feature brings its own urls module; the admin site serves the portal's pages."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from backoffice.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/console/", include("backoffice.console.urls")),
    path("admin/exports/", include("backoffice.exports.urls")),
    path("admin/audit/", include("backoffice.audit.urls")),
    path("ops/", include("backoffice.ops.urls")),
    path("admin/", admin.site.urls),
    path("api/points/", include("points.urls")),
    path("api/", include("orders.urls")),
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
]
