"""Mounted at api/ by the project's urls."""

from django.urls import path

from orders import views

app_name = "orders"

urlpatterns = [
    path("orders/", views.orders_view, name="orders"),
    path("orders/<str:number>/", views.order_detail_view, name="detail"),
    path("orders/<str:number>/cancel/", views.order_cancel_view, name="cancel"),
    path("payments/callback/", views.payment_callback_view, name="payment-callback"),
    path("sms/code/", views.sms_code_view, name="sms-code"),
    path("grab/<str:sku>/", views.grab_view, name="grab"),
]
