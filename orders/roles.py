"""What each staff role may do with orders (gathered by backoffice.accounts.roles)."""

from backoffice.accounts.roles import ANALYSTS, OPERATORS, OPS

_READ = [
    "orders.view_order",
    "orders.view_orderline",
    "orders.view_orderevent",
    "orders.view_paymentevent",
    "orders.view_product",
    "orders.view_coupon",
    "orders.view_entitlement",
    "orders.view_grabrequest",
]

ROLE_PERMISSIONS = {
    OPERATORS: [
        *_READ,
        "orders.cancel_order",
        "orders.refund_order",
        "orders.add_product",
        "orders.change_product",
        "orders.add_coupon",
        "orders.change_coupon",
        "orders.view_usercoupon",
        "orders.add_usercoupon",
        "orders.change_usercoupon",
    ],
    ANALYSTS: [*_READ, "orders.view_usercoupon"],
    OPS: ["orders.view_order", "orders.view_paymentevent"],
}
