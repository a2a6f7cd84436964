"""Test data for orders: users with points, products, coupons, signed callbacks."""

import json
from decimal import Decimal

import factory
from django.conf import settings
from django.contrib.auth import get_user_model

from orders.models import Coupon, Product, UserCoupon
from orders.payments import signature_header
from points.services import points_adjust


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"buyer{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"SKU-{n}")
    name = factory.Sequence(lambda n: f"Course {n}")
    price = Decimal("20.00")


class CouponFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Coupon

    code = factory.Sequence(lambda n: f"SAVE{n}")
    kind = Coupon.Kind.AMOUNT
    value = Decimal("5.00")


def give_points(user, amount: int) -> None:
    points_adjust(user_id=user.pk, amount=amount, reason="test balance")


def give_coupon(user, coupon) -> UserCoupon:
    return UserCoupon.objects.create(user=user, coupon=coupon)


def callback_body(order, *, event_id: str, amount=None, status: str = "succeeded") -> bytes:
    return json.dumps(
        {"event_id": event_id, "order_number": order.number, "amount": str(amount or order.total), "status": status}
    ).encode()


def signed_post(client, body: bytes, *, timestamp: int | None = None, secret: str | None = None):
    header = signature_header(secret=secret or settings.PAYMENT_WEBHOOK_SECRET, body=body, timestamp=timestamp)
    return client.post(
        "/api/payments/callback/", data=body, content_type="application/json", headers={"X-Signature": header}
    )
