"""Reads of orders shaped for the API and the admin."""

from django.db.models import QuerySet

from orders.models import Order

RECENT_ORDERS = 50  # what the buyer's order list shows


def orders_of(*, user) -> QuerySet[Order]:
    """The buyer's orders, newest first, with what order_as_json reads."""
    return Order.objects.filter(user=user).prefetch_related("lines__product")


def orders_recent(*, user) -> list[Order]:
    return list(orders_of(user=user)[:RECENT_ORDERS])


def order_as_json(order: Order) -> dict:
    return {
        "number": order.number,
        "status": order.status,
        "subtotal": str(order.subtotal),
        "discount": str(order.discount),
        "points": order.points_redeemed,
        "points_value": str(order.points_value),
        "total": str(order.total),
        "expires_at": order.expires_at.isoformat(),
        "lines": [
            {"sku": line.product.sku, "quantity": line.quantity, "unit_price": str(line.unit_price)}
            for line in order.lines.all()
        ],
    }
