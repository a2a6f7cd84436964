"""django-import-export resources: orders are exported (CSV from the orders admin), never imported."""

from import_export import fields, resources

from orders.models import Order


class OrderResource(resources.ModelResource):
    user = fields.Field(attribute="user__username", column_name="user")
    coupon = fields.Field(attribute="user_coupon__coupon__code", column_name="coupon")

    class Meta:
        model = Order
        fields = (
            "number",
            "user",
            "status",
            "subtotal",
            "discount",
            "coupon",
            "points_redeemed",
            "points_value",
            "total",
            "created_at",
            "expires_at",
            "paid_at",
            "fulfilled_at",
            "expired_at",
            "cancelled_at",
            "refunded_at",
            "cancel_reason",
            "needs_refund",
        )
        export_order = fields

    def get_queryset(self):
        return super().get_queryset().select_related("user", "user_coupon__coupon")
