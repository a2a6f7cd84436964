from django.urls import path

from backoffice.ops import views

app_name = "ops"

urlpatterns = [
    path("flower/", views.flower_proxy, name="flower_proxy_root"),
    path("flower/<path:path>", views.flower_proxy, name="flower_proxy"),
    path("flower-auth", views.flower_auth, name="flower_auth"),
    path("monitor/", views.flower_page, name="flower"),
    path("workers/", views.workers, name="workers"),
]
