from django.urls import path

from backoffice.console import views

app_name = "console"

urlpatterns = [
    path("", views.index, name="index"),
    path("tasks/<str:name>/", views.task, name="task"),
    path("runs/<str:task_id>/", views.run, name="run"),
    path("runs/<str:task_id>/status.json", views.run_status, name="run_status"),
    path("runs/<str:task_id>/revoke/", views.revoke, name="revoke"),
]
