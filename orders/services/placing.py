"""Placing an order: its seats taken, its coupon reserved and its points redeemed, all or nothing, in the lock
order every service follows: order -> product -> user coupon / coupon -> points account."""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from backoffice.notify.services import SmsCodeError, phone_normalise
from orders.models import POINT_VALUE, Coupon, Order, OrderLine, Product, UserCoupon
from orders.services.common import OrderError, enqueue
from orders.services.events import event_record
from orders.services.payment import order_settle
from orders.tasks import order_expire_task
from points.services import InsufficientPoints, points_redeem

MAX_LINES = 20  # an order is a basket, not a bulk import
MAX_QUANTITY = 100
Status = Order.Status


@dataclass(frozen=True)
class LineRequest:
    sku: str
    quantity: int


def new_number(now: datetime) -> str:
    return f"{now:%y%m%d}{secrets.token_hex(5).upper()}"


def seats_take(*, product_id: int, quantity: int) -> bool:
    """Take seats with one conditional UPDATE: it matches only while enough are left, so however many
    transactions race, the product is never sold past its capacity."""
    return bool(
        Product.objects.filter(pk=product_id, capacity__isnull=False, seats_taken__lte=F("capacity") - quantity).update(
            seats_taken=F("seats_taken") + quantity
        )
    )


def coupon_reserve(*, user, code: str, now: datetime) -> tuple[UserCoupon, Coupon]:
    coupon = Coupon.objects.filter(code=code).first()
    if coupon is None:
        raise OrderError("coupon_unknown", _("There is no coupon with this code."), field="coupon")
    if (
        not coupon.is_active
        or (coupon.valid_from and now < coupon.valid_from)
        or (coupon.valid_until and now >= coupon.valid_until)
    ):
        raise OrderError("coupon_not_valid", _("This coupon is not valid now."), field="coupon")
    held = UserCoupon.objects.filter(user=user, coupon=coupon)
    candidate = held.filter(status=UserCoupon.Status.UNUSED).order_by("id").first()
    if candidate is None:
        if held.exists():
            raise OrderError("coupon_used", _("You have already used this coupon."), status=409, field="coupon")
        raise OrderError("coupon_not_owned", _("You do not hold this coupon."), field="coupon")
    if not UserCoupon.objects.filter(pk=candidate.pk, status=UserCoupon.Status.UNUSED).update(
        status=UserCoupon.Status.RESERVED
    ):
        raise OrderError("coupon_used", _("This coupon is already in use."), status=409, field="coupon")
    if not Coupon.objects.filter(Q(usage_limit__isnull=True) | Q(times_used__lt=F("usage_limit")), pk=coupon.pk).update(
        times_used=F("times_used") + 1
    ):
        raise OrderError("coupon_exhausted", _("This coupon has run out."), status=409, field="coupon")
    return candidate, coupon


def order_place(
    *,
    user,
    lines: list[LineRequest],
    coupon_code: str = "",
    points: int = 0,
    phone: str = "",
    now: datetime | None = None,
) -> Order:
    """Place an order: take its seats, reserve its coupon and redeem its points, all or nothing."""
    now = now or timezone.now()
    if not lines:
        raise OrderError("lines_required", _("An order needs at least one line."), field="lines")
    if len(lines) > MAX_LINES:
        raise OrderError("too_many_lines", _("An order has at most %d lines.") % MAX_LINES, field="lines")
    quantities: dict[str, int] = {}
    for line in lines:
        if line.sku in quantities:
            raise OrderError("duplicate_sku", _("Each product may appear on one line only."), field="lines")
        if not 1 <= line.quantity <= MAX_QUANTITY:
            raise OrderError("bad_quantity", _("Quantity must be between 1 and %d.") % MAX_QUANTITY, field="lines")
        quantities[line.sku] = line.quantity
    if points < 0:
        raise OrderError("bad_points", _("Points cannot be negative."), field="points")
    if phone:
        try:
            phone = phone_normalise(phone)
        except SmsCodeError as exc:
            raise OrderError("bad_phone", exc.message, field="phone") from None

    with transaction.atomic(durable=True):
        products = {product.sku: product for product in Product.objects.filter(sku__in=quantities)}
        missing = sorted(set(quantities) - set(products))
        if missing:
            raise OrderError("unknown_product", _("Unknown product: %s.") % ", ".join(missing), field="lines")
        inactive = sorted(sku for sku, product in products.items() if not product.is_active)
        if inactive:
            raise OrderError("inactive_product", _("Not on sale: %s.") % ", ".join(inactive), status=409, field="lines")
        subtotal = sum((products[sku].price * qty for sku, qty in quantities.items()), Decimal("0"))

        # Seats first (products), then the coupon, then points: the lock order every service follows.
        seated = set()
        for product in sorted(products.values(), key=lambda p: p.pk):
            if product.capacity is None:
                continue
            if not seats_take(product_id=product.pk, quantity=quantities[product.sku]):
                raise OrderError(
                    "sold_out", _("Not enough seats left for %s.") % product.sku, status=409, field="lines"
                )
            seated.add(product.sku)

        user_coupon, discount = None, Decimal("0")
        if coupon_code:
            user_coupon, coupon = coupon_reserve(user=user, code=coupon_code, now=now)
            discount = coupon.discount_for(subtotal)
        points_value = points * POINT_VALUE
        if points_value > subtotal - discount:
            raise OrderError("too_many_points", _("Points cover more than the amount left to pay."), field="points")

        order = Order.objects.create(
            number=new_number(now),
            user=user,
            subtotal=subtotal,
            discount=discount,
            points_redeemed=points,
            points_value=points_value,
            total=subtotal - discount - points_value,
            user_coupon=user_coupon,
            phone=phone,
            expires_at=now + timedelta(minutes=settings.ORDER_PAYMENT_TIMEOUT_MINUTES),
        )
        OrderLine.objects.bulk_create(
            OrderLine(
                order=order,
                product=products[sku],
                quantity=qty,
                unit_price=products[sku].price,
                holds_seats=sku in seated,
            )
            for sku, qty in quantities.items()
        )
        if points:
            try:
                points_redeem(
                    user_id=user.pk,
                    amount=points,
                    idempotency_key=f"order:{order.number}:redeem",
                    order_number=order.number,
                    reason=f"order {order.number}",
                )
            except InsufficientPoints as exc:
                raise OrderError(
                    "insufficient_points",
                    _("Your balance is %(balance)d points.") % {"balance": exc.balance},
                    status=409,
                    field="points",
                ) from exc
        event_record(order_id=order.pk, to_status=Status.PENDING, actor=user, source="user", reason="placed")
        if order.total == 0:  # points and coupon cover it all: nothing to wait for
            order_settle(order=order, source="system", reason="nothing to pay", now=now)
        else:
            enqueue(order_expire_task, eta=order.expires_at, order_id=order.pk)
    order.refresh_from_db()
    return order
