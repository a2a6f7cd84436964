"""What orders add to the portal (collected by backoffice.extension_point): the orders panel of the dashboard,
and orders as an export target. Its admin pages are the ModelAdmins in admin.py."""

from django.utils.translation import gettext_lazy as _

from backoffice.extension_point import IDENTIFIER, Column, ExportTarget, Panel

PANELS = [
    Panel(
        key="orders",
        title=_("Orders"),
        permission="orders.view_order",
        template="orders/panels/orders.html",
        compute="orders.dashboard.orders_panel_figures",
        shape="orders.dashboard.orders_panel_shape",
        position=30,
    ),
]

# The orders export: its columns, in file order (the exports app writes them; see backoffice/exports/).
EXPORTS = [
    ExportTarget(
        key="orders",
        label=_("Orders"),
        model_label="orders.Order",
        permission="portal_exports.export_orders",
        columns=(
            Column("id", _("ID")),
            Column("number", _("Number"), IDENTIFIER),
            Column("user__username", _("User")),
            Column("status", _("Status")),
            Column("subtotal", _("Subtotal")),
            Column("discount", _("Coupon discount")),
            Column("points_redeemed", _("Points redeemed")),
            Column("points_value", _("Points value")),
            Column("total", _("Total")),
            Column("phone", _("Phone"), IDENTIFIER),
            Column("created_at", _("Created")),
            Column("expires_at", _("Payment deadline")),
            Column("paid_at", _("Paid")),
            Column("fulfilled_at", _("Fulfilled")),
            Column("expired_at", _("Expired")),
            Column("cancelled_at", _("Cancelled")),
            Column("refunded_at", _("Refunded")),
            Column("cancel_reason", _("Cancel reason")),
            Column("needs_refund", _("Needs refund")),
        ),
    ),
]
