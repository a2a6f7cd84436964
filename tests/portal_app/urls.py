from django.urls import path

from tests.portal_app import views

app_name = "portal_app"

urlpatterns = [
    path("", views.report, name="report"),
]
