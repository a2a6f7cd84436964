"""Orders: products (optionally with limited seats), coupons, orders with a payment deadline, payments,
entitlements and the early-access grab.

Rows here change only through orders.services; the status of an order moves only along TRANSITIONS.
"""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

MONEY = {"max_digits": 12, "decimal_places": 2}
POINT_VALUE = Decimal("0.01")  # one point is worth one cent of the order total


class Product(models.Model):
    sku = models.CharField(_("SKU"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    price = models.DecimalField(_("price"), **MONEY)
    is_active = models.BooleanField(_("active"), default=True)
    capacity = models.PositiveIntegerField(
        _("capacity"), null=True, blank=True, help_text=_("Limited seats; empty means unlimited.")
    )
    seats_taken = models.PositiveIntegerField(
        _("seats taken"), default=0, help_text=_("Held by pending and paid orders and granted early access.")
    )

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["sku"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="orders_product_price_gte_0"),
            # The database refuses an oversold product even if a bug skipped the conditional update.
            models.CheckConstraint(
                condition=Q(capacity__isnull=True) | Q(seats_taken__lte=F("capacity")),
                name="orders_product_seats_within_capacity",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku} ({self.name})"

    def clean(self):
        if self.pk and self.capacity is not None:
            taken = Product.objects.filter(pk=self.pk).values_list("seats_taken", flat=True).first() or 0
            if self.capacity < taken:
                raise ValidationError(
                    {"capacity": _("%(taken)d seats are already taken; capacity cannot be lower.") % {"taken": taken}}
                )

    @property
    def seats_left(self) -> int | None:
        return None if self.capacity is None else max(self.capacity - self.seats_taken, 0)


class Coupon(models.Model):
    class Kind(models.TextChoices):
        AMOUNT = "amount", _("amount off")
        PERCENT = "percent", _("percent off")

    code = models.CharField(_("code"), max_length=64, unique=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.AMOUNT)
    value = models.DecimalField(_("value"), **MONEY, help_text=_("Amount off, or percent off (0-100)."))
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    usage_limit = models.PositiveIntegerField(
        _("usage limit"), null=True, blank=True, help_text=_("Orders that may hold it at once; empty: no limit.")
    )
    times_used = models.PositiveIntegerField(_("times used"), default=0, help_text=_("Reserved or used."))
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(value__gt=0), name="orders_coupon_value_gt_0"),
            models.CheckConstraint(
                condition=~Q(kind="percent") | Q(value__lte=100), name="orders_coupon_percent_lte_100"
            ),
            models.CheckConstraint(
                condition=Q(usage_limit__isnull=True) | Q(times_used__lte=F("usage_limit")),
                name="orders_coupon_within_usage_limit",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    def clean(self):
        if self.kind == self.Kind.PERCENT and self.value is not None and self.value > 100:
            raise ValidationError({"value": _("A percentage is at most 100.")})
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValidationError({"valid_until": _("The end must come after the start.")})
        if self.pk and self.usage_limit is not None:
            used = Coupon.objects.filter(pk=self.pk).values_list("times_used", flat=True).first() or 0
            if self.usage_limit < used:
                raise ValidationError(
                    {"usage_limit": _("It is already used %(used)d times; the limit cannot be lower.") % {"used": used}}
                )

    def discount_for(self, subtotal: Decimal) -> Decimal:
        off = (subtotal * self.value / 100).quantize(Decimal("0.01")) if self.kind == self.Kind.PERCENT else self.value
        return min(off, subtotal)


class UserCoupon(models.Model):
    """A coupon a user holds: unused, reserved by a pending order, or used by a paid one."""

    class Status(models.TextChoices):
        UNUSED = "unused", _("unused")
        RESERVED = "reserved", _("reserved")
        USED = "used", _("used")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="coupons", verbose_name=_("user")
    )
    coupon = models.ForeignKey(Coupon, on_delete=models.PROTECT, related_name="holders", verbose_name=_("coupon"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.UNUSED)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("user coupon")
        verbose_name_plural = _("user coupons")
        indexes = [models.Index(fields=["user", "coupon", "status"], name="orders_usercoupon_lookup")]

    def __str__(self) -> str:
        return f"{self.coupon} / {self.user} ({self.get_status_display()})"


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("pending payment")
        PAID = "paid", _("paid")
        FULFILLED = "fulfilled", _("fulfilled")
        EXPIRED = "expired", _("expired")
        CANCELLED = "cancelled", _("cancelled")
        REFUNDED = "refunded", _("refunded")

    number = models.CharField(_("number"), max_length=32, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders", verbose_name=_("user")
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    subtotal = models.DecimalField(_("subtotal"), **MONEY)
    discount = models.DecimalField(_("coupon discount"), **MONEY, default=Decimal("0"))
    points_redeemed = models.PositiveIntegerField(_("points redeemed"), default=0)
    points_value = models.DecimalField(_("points value"), **MONEY, default=Decimal("0"))
    total = models.DecimalField(_("total to pay"), **MONEY)
    user_coupon = models.ForeignKey(
        UserCoupon,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="orders",
        verbose_name=_("coupon"),
    )
    phone = models.CharField(_("phone for notices"), max_length=32, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    expires_at = models.DateTimeField(_("payment deadline"))
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    fulfilled_at = models.DateTimeField(_("fulfilled at"), null=True, blank=True)
    expired_at = models.DateTimeField(_("expired at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    refunded_at = models.DateTimeField(_("refunded at"), null=True, blank=True)
    cancel_reason = models.CharField(_("cancel reason"), max_length=300, blank=True)
    needs_refund = models.BooleanField(
        _("needs refund"), default=False, help_text=_("A payment arrived that the order could not accept.")
    )

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-created_at"]
        indexes = [
            # The sweeper's query: pending orders past their deadline, oldest first.
            models.Index(fields=["status", "expires_at"], name="orders_order_status_expires"),
            models.Index(fields=["needs_refund"], name="orders_order_needs_refund", condition=Q(needs_refund=True)),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(total__gte=0), name="orders_order_total_gte_0"),
            models.CheckConstraint(
                condition=Q(total=F("subtotal") - F("discount") - F("points_value")),
                name="orders_order_total_adds_up",
            ),
        ]
        permissions = [
            ("cancel_order", _("Can cancel a pending order")),
            ("refund_order", _("Can mark an order refunded")),
        ]

    def __str__(self) -> str:
        return self.number


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines", verbose_name=_("order"))
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+", verbose_name=_("product"))
    quantity = models.PositiveIntegerField(_("quantity"))
    unit_price = models.DecimalField(_("unit price"), **MONEY)
    # Whether placing took seats for this line, so a release gives back exactly what was taken even if staff
    # change the product's capacity in between.
    holds_seats = models.BooleanField(_("holds seats"), default=False)

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="orders_line_quantity_gte_1"),
            models.UniqueConstraint(fields=["order", "product"], name="orders_line_one_per_product"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product_id}"


class OrderEvent(models.Model):
    """One status change: history, never edited."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events", verbose_name=_("order"))
    from_status = models.CharField(_("from"), max_length=16, blank=True)
    to_status = models.CharField(_("to"), max_length=16)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by user"),
    )
    source = models.CharField(_("by"), max_length=64, help_text=_("user, staff, a task name or the callback"))
    reason = models.CharField(_("why"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True)

    class Meta:
        verbose_name = _("order event")
        verbose_name_plural = _("order events")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.from_status or '-'} -> {self.to_status}"


class PaymentEvent(models.Model):
    """A verified payment callback, kept with its raw body. Unverified deliveries are logged, never stored:
    storing them would let a forger take a provider event id before the real event arrives."""

    class Outcome(models.TextChoices):
        PAID = "paid", _("order paid")
        FAILED = "failed", _("payment failed")
        LATE = "late", _("late: order no longer payable, refund needed")
        DUPLICATE = "duplicate", _("order already paid, refund needed")

    provider_event_id = models.CharField(_("provider event id"), max_length=128, unique=True)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments", verbose_name=_("order"))
    status = models.CharField(_("provider status"), max_length=16)
    amount = models.DecimalField(_("amount"), **MONEY)
    raw_body = models.TextField(_("raw body"))
    signed_at = models.DateTimeField(_("signed at"))
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices)
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)

    class Meta:
        verbose_name = _("payment event")
        verbose_name_plural = _("payment events")
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.provider_event_id


class Entitlement(models.Model):
    """What a user was granted: a product bought by a paid order, or early access won in a grab."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="entitlements", verbose_name=_("user")
    )
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+", verbose_name=_("product"))
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, null=True, blank=True, related_name="entitlements", verbose_name=_("order")
    )
    granted_at = models.DateTimeField(_("granted at"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("entitlement")
        verbose_name_plural = _("entitlements")
        constraints = [
            models.UniqueConstraint(
                fields=["order", "product"], condition=Q(order__isnull=False), name="orders_entitlement_per_line"
            ),
            models.UniqueConstraint(
                fields=["user", "product"], condition=Q(order__isnull=True), name="orders_entitlement_one_grab"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} / {self.product}"


class GrabRequest(models.Model):
    """A user's ask for a limited early-access product, decided by a task while the page polls."""

    class Status(models.TextChoices):
        PENDING = "pending", _("deciding")
        GRANTED = "granted", _("granted")
        REFUSED = "refused", _("sold out")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("user")
    )
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+", verbose_name=_("product"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(_("asked at"), auto_now_add=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)

    class Meta:
        verbose_name = _("early-access request")
        verbose_name_plural = _("early-access requests")
        constraints = [models.UniqueConstraint(fields=["user", "product"], name="orders_grab_one_per_user")]

    def __str__(self) -> str:
        return f"{self.user} / {self.product} ({self.get_status_display()})"


# The only moves an order's status makes: (from, to). orders.services.transitions applies them (one order or a batch).
TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        (Order.Status.PENDING, Order.Status.PAID),
        (Order.Status.PENDING, Order.Status.EXPIRED),
        (Order.Status.PENDING, Order.Status.CANCELLED),
        (Order.Status.PAID, Order.Status.FULFILLED),
        (Order.Status.PAID, Order.Status.REFUNDED),
        (Order.Status.FULFILLED, Order.Status.REFUNDED),  # refunds happen after fulfilment too (fulfilment is instant)
    }
)

# The timestamp each target status sets.
TRANSITION_TIMESTAMPS = {
    Order.Status.PAID: "paid_at",
    Order.Status.FULFILLED: "fulfilled_at",
    Order.Status.EXPIRED: "expired_at",
    Order.Status.CANCELLED: "cancelled_at",
    Order.Status.REFUNDED: "refunded_at",
}
