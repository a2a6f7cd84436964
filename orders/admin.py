"""Orders in the admin: products and coupons are edited here; orders, events and payments are history that
changes only through services (the actions below), each action logged to the admin log (LogEntry)."""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from import_export.admin import ExportMixin

from backoffice.extension_point import ExportAdminMixin
from orders.models import (
    Coupon,
    Entitlement,
    GrabRequest,
    Order,
    OrderEvent,
    OrderLine,
    PaymentEvent,
    Product,
    UserCoupon,
)
from orders.resources import OrderResource
from orders.services import order_cancel, order_mark_refunded


class ReadOnlyAdminMixin:
    """History: viewable by those with the view permission, never added, changed or deleted."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "price", "is_active", "capacity", "seats_taken", "seats_left"]
    list_filter = ["is_active"]
    search_fields = ["sku", "name"]
    readonly_fields = ["seats_taken"]  # moved only by placing, expiring, cancelling and refunding orders

    def save_model(self, request, obj, form, change):
        # Never write back the seat counter read when the form was loaded: orders move it meanwhile.
        obj.save(update_fields=[f for f in form.fields if f != "seats_taken"] if change else None)

    @admin.display(description=_("seats left"))
    def seats_left(self, obj):
        return "-" if obj.capacity is None else obj.seats_left


@admin.register(Coupon)
class CouponAdmin(admin.ModelAdmin):
    list_display = ["code", "kind", "value", "valid_from", "valid_until", "usage_limit", "times_used", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["code"]
    readonly_fields = ["times_used"]

    def save_model(self, request, obj, form, change):
        # Never write back the usage counter read when the form was loaded: orders move it meanwhile.
        obj.save(update_fields=[f for f in form.fields if f != "times_used"] if change else None)


@admin.register(UserCoupon)
class UserCouponAdmin(admin.ModelAdmin):
    list_display = ["coupon", "user", "status", "created_at"]
    list_filter = ["status", "coupon"]
    search_fields = ["coupon__code", "user__username", "user__email"]
    autocomplete_fields = ["user", "coupon"]
    list_select_related = ["coupon", "user"]

    def get_readonly_fields(self, request, obj=None):
        # Staff hand out coupons; only orders reserve and use them, and a coupon held never changes hands.
        return ["status"] if obj is None else ["user", "coupon", "status"]


class OrderLineInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = OrderLine
    fields = ["product", "quantity", "unit_price", "holds_seats"]
    readonly_fields = fields
    extra = 0


class OrderEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = OrderEvent
    fields = ["created_at", "from_status", "to_status", "source", "actor", "reason"]
    readonly_fields = fields
    extra = 0


class PaymentEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = PaymentEvent
    fields = ["received_at", "provider_event_id", "status", "amount", "outcome"]
    readonly_fields = fields
    extra = 0


@admin.register(Order)
class OrderAdmin(ExportAdminMixin, ExportMixin, admin.ModelAdmin):
    resource_classes = [OrderResource]
    list_display = [
        "number",
        "user",
        "status",
        "total",
        "points_redeemed",
        "created_at",
        "expires_at",
        "needs_refund",
    ]
    list_filter = ["status", "needs_refund", "created_at", "expires_at"]
    search_fields = ["=number", "user__username", "user__email"]
    show_full_result_count = False  # one COUNT per page, not two, on a large table
    inlines = [OrderLineInline, OrderEventInline, PaymentEventInline]
    actions = ["cancel_orders", "mark_refunded"]
    fields = [
        "number",
        "user",
        "status",
        "needs_refund",
        "subtotal",
        "discount",
        "user_coupon",
        "points_redeemed",
        "points_value",
        "total",
        "phone",
        "created_at",
        "expires_at",
        "paid_at",
        "fulfilled_at",
        "expired_at",
        "cancelled_at",
        "refunded_at",
        "cancel_reason",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_cancel_permission(self, request):
        return request.user.has_perm("orders.cancel_order")

    def has_refund_permission(self, request):
        return request.user.has_perm("orders.refund_order")

    @admin.action(description=_("Cancel selected pending orders"), permissions=["cancel"])
    def cancel_orders(self, request, queryset):
        done = 0
        for order in queryset:
            if order_cancel(order=order, actor=request.user, reason="cancelled by staff", source="staff"):
                self.log_change(request, order, "Cancelled by staff (order_cancel).")
                done += 1
        self._report(request, done, len(queryset), ngettext("%d order cancelled.", "%d orders cancelled.", done) % done)

    @admin.action(description=_("Mark selected orders refunded"), permissions=["refund"])
    def mark_refunded(self, request, queryset):
        done = 0
        for order in queryset:
            if order_mark_refunded(order=order, staff_user=request.user, reason="refunded by staff"):
                self.log_change(request, order, "Marked refunded by staff (order_mark_refunded).")
                done += 1
        self._report(
            request,
            done,
            len(queryset),
            ngettext("%d order marked refunded.", "%d orders marked refunded.", done) % done,
        )

    def _report(self, request, done: int, selected: int, message: str) -> None:
        self.message_user(request, message, messages.SUCCESS if done else messages.WARNING)
        if done < selected:
            skipped = selected - done
            self.message_user(
                request,
                ngettext(
                    "%d order was skipped: its status does not allow this.",
                    "%d orders were skipped: their status does not allow this.",
                    skipped,
                )
                % skipped,
                messages.WARNING,
            )


@admin.register(PaymentEvent)
class PaymentEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["provider_event_id", "order", "status", "amount", "outcome", "received_at"]
    list_filter = ["outcome", "status", "received_at"]
    search_fields = ["=provider_event_id", "=order__number"]
    list_select_related = ["order"]


@admin.register(Entitlement)
class EntitlementAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["user", "product", "order", "granted_at", "revoked_at"]
    list_filter = ["product"]
    search_fields = ["user__username", "=order__number"]
    list_select_related = ["user", "product", "order"]


@admin.register(GrabRequest)
class GrabRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["user", "product", "status", "created_at", "decided_at"]
    list_filter = ["status", "product"]
    search_fields = ["user__username"]
    list_select_related = ["user", "product"]
