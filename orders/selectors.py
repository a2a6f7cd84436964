"""Reads of orders shaped for the API and the admin."""

from orders.models import Order


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
