"""What orders add to the portal (collected by backoffice.extension_point): the orders panel of the dashboard,
and orders as an export target. Its admin pages are the ModelAdmins in admin.py."""

from django.utils.translation import gettext_lazy as _

from backoffice.extension_point import Panel

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
