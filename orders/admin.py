"""Orders in the admin: products and coupons are edited here; orders, events and payments are history that
changes only through services (the actions below), each action logged to the admin log (LogEntry)."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST
from import_export.admin import ExportMixin

from backoffice.admin_mixins import ReadOnlyAdminMixin
from backoffice.extension_point import ExportAdminMixin
from orders.models import (
    TRANSITIONS,
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
    change_form_template = "admin/orders/order/change_form.html"
    fields = [
        "number",
        "user",
        "status",
        "refund_state",
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

    @admin.display(description=_("needs refund"))
    def refund_state(self, obj) -> str:
        # The field's help text reads as a statement on every order; say what holds for this one.
        if obj.needs_refund:
            return gettext("Yes: a payment arrived that the order could not accept; refund it, then mark it refunded.")
        return gettext("No")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # history: the status moves only through the services behind the buttons and actions

    def has_delete_permission(self, request, obj=None):
        return False

    def has_cancel_permission(self, request):
        return request.user.has_perm("orders.cancel_order")

    def has_refund_permission(self, request):
        return request.user.has_perm("orders.refund_order")

    def _cancel(self, request, order) -> bool:
        if not order_cancel(order=order, actor=request.user, reason="cancelled by staff", source="staff"):
            return False
        self.log_change(request, order, "Cancelled by staff (order_cancel).")
        return True

    def _refund(self, request, order) -> bool:
        if not order_mark_refunded(order=order, staff_user=request.user, reason="refunded by staff"):
            return False
        self.log_change(request, order, "Marked refunded by staff (order_mark_refunded).")
        return True

    @staticmethod
    def can_cancel(order) -> bool:
        return (order.status, Order.Status.CANCELLED) in TRANSITIONS

    @staticmethod
    def can_refund(order) -> bool:
        return order.needs_refund or (order.status, Order.Status.REFUNDED) in TRANSITIONS

    @admin.action(description=_("Cancel selected pending orders"), permissions=["cancel"])
    def cancel_orders(self, request, queryset):
        done = sum(self._cancel(request, order) for order in queryset)
        self._report(request, done, len(queryset), ngettext("%d order cancelled.", "%d orders cancelled.", done) % done)

    @admin.action(description=_("Mark selected orders refunded"), permissions=["refund"])
    def mark_refunded(self, request, queryset):
        done = sum(self._refund(request, order) for order in queryset)
        self._report(
            request,
            done,
            len(queryset),
            ngettext("%d order marked refunded.", "%d orders marked refunded.", done) % done,
        )

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/cancel/", wrap(self.cancel_view), name="orders_order_cancel"),
            path("<path:object_id>/refund/", wrap(self.refund_view), name="orders_order_refund"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        order = self.get_object(request, object_id)
        extra_context = {
            **(extra_context or {}),
            "show_cancel": order is not None and self.has_cancel_permission(request) and self.can_cancel(order),
            "show_refund": order is not None and self.has_refund_permission(request) and self.can_refund(order),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def _button_view(self, request, object_id, *, allowed, act, done_message):
        if not allowed(request):
            raise PermissionDenied
        order = self.get_object(request, object_id)
        if order is None:
            raise Http404
        if act(request, order):
            self.message_user(request, done_message % {"number": order.number}, messages.SUCCESS)
        else:
            self.message_user(
                request,
                gettext("Order %(number)s was not changed: its status (%(status)s) does not allow this.")
                % {"number": order.number, "status": Order.objects.get(pk=order.pk).get_status_display()},
                messages.WARNING,
            )
        return HttpResponseRedirect(reverse("admin:orders_order_change", args=[order.pk]))

    @method_decorator(require_POST)
    def cancel_view(self, request, object_id):
        return self._button_view(
            request, object_id, allowed=self.has_cancel_permission, act=self._cancel,
            done_message=gettext("Order %(number)s cancelled."),
        )  # fmt: skip

    @method_decorator(require_POST)
    def refund_view(self, request, object_id):
        return self._button_view(
            request, object_id, allowed=self.has_refund_permission, act=self._refund,
            done_message=gettext("Order %(number)s marked refunded."),
        )  # fmt: skip

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
