from django.contrib import admin
from django.urls import path

from backoffice.exports import views

app_name = "exports"


def _admin(view):
    """Staff only, as every admin page (login redirect, CSRF, no caching)."""
    return admin.site.admin_view(view)


urlpatterns = [
    path("", _admin(views.index), name="index"),
    path("new/<slug:target>/", _admin(views.start), name="start"),
    path("jobs/<int:pk>/", _admin(views.job_page), name="job"),
    path("jobs/<int:pk>/status/", _admin(views.job_status), name="status"),
    path("jobs/<int:pk>/cancel/", _admin(views.job_cancel), name="cancel"),
    path("jobs/<int:pk>/download/", _admin(views.job_download), name="download"),
]
