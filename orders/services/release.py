"""Giving back what an order held (seats, coupon, points) once it left `pending` or was refunded.

Only the side whose transition won calls this, once per order, so the rows need no "released" mark. Set-based
for a batch of any size: one UPDATE for the seats, one for the user coupons and one for the coupons' counters,
one batched refund through the ledger's append path (keyed by the order, so a second release of the same order
refunds nothing). Counters of several products or coupons are locked in id order first, the order placing
takes them in, so a sweep and a placing never deadlock.
"""

from django.db.models import Case, Count, F, Sum, Value, When

from orders.models import Coupon, Order, OrderLine, Product, UserCoupon
from points.bulk import any_of
from points.services import PointsRefund, points_refund_many

RELEASE_FIELDS = ("id", "number", "user_id", "points_redeemed", "user_coupon_id")


def release_row(order: Order) -> dict:
    """What orders_release needs of an order."""
    return {name: getattr(order, name) for name in RELEASE_FIELDS}


def counters_decrement(model, field: str, amounts: dict[int, int]) -> None:
    """Take `amounts` (by row id) off `field` of `model`'s rows in one UPDATE, the rows locked in id order."""
    amounts = {pk: amount for pk, amount in amounts.items() if amount}
    if not amounts:
        return
    if len(amounts) == 1:
        ((pk, amount),) = amounts.items()
        model.objects.filter(pk=pk).update(**{field: F(field) - amount})
        return
    rows = model.objects.filter(pk__in=sorted(amounts))
    list(rows.select_for_update().order_by("pk").values_list("pk", flat=True))
    taken = Case(*(When(pk=pk, then=Value(amount)) for pk, amount in sorted(amounts.items())), default=Value(0))
    rows.update(**{field: F(field) - taken})


def orders_release(*, orders: list[dict], reason: str, coupons: bool = True) -> None:
    """Give back the seats, coupons (unless `coupons` is False: a refunded order's coupon stays used) and
    points of `orders` (rows of RELEASE_FIELDS). Call inside the transaction of the transition that won."""
    ids = [row["id"] for row in orders]
    seats = (
        OrderLine.objects.filter(any_of(OrderLine, "order_id", ids), holds_seats=True)
        .values("product_id")
        .annotate(quantity=Sum("quantity"))
        .order_by("product_id")
    )
    counters_decrement(Product, "seats_taken", {row["product_id"]: row["quantity"] for row in seats})
    held = [row["user_coupon_id"] for row in orders if row["user_coupon_id"]]
    if coupons and held:
        reserved = UserCoupon.objects.filter(any_of(UserCoupon, "id", held), status=UserCoupon.Status.RESERVED)
        per_coupon = {
            row["coupon_id"]: row["count"]
            for row in reserved.values("coupon_id").annotate(count=Count("id")).order_by("coupon_id")
        }
        reserved.update(status=UserCoupon.Status.UNUSED)
        counters_decrement(Coupon, "times_used", per_coupon)
    points_refund_many(
        refunds=[
            PointsRefund(
                user_id=row["user_id"],
                amount=row["points_redeemed"],
                idempotency_key=f"order:{row['number']}:restore",
                order_number=row["number"],
            )
            for row in sorted(orders, key=lambda r: r["id"])
            if row["points_redeemed"]
        ],
        reason=reason,
    )
