from django.urls import path

from points import views

app_name = "points"

urlpatterns = [
    path("checkin/", views.checkin, name="checkin"),
    path("me/", views.me, name="me"),
]
