"""Every state change of orders, each in its own durable transaction.

Status moves only through `order_transition`, a conditional UPDATE per allowed source status, so of two racing
transitions (a payment and an expiry) exactly one updates the row; only the winner gives back seats, coupon and
points, so they are restored exactly once. Rows are locked in one order everywhere to avoid deadlocks:
order -> product -> user coupon / coupon -> points account.
"""

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from backoffice.errors import AppError
from backoffice.notify.services import SmsCodeError, email_queue, phone_normalise, sms_queue
from backoffice.publishing import task_publish_on_commit
from orders.models import (
    POINT_VALUE,
    TRANSITION_TIMESTAMPS,
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
from orders.tasks import (
    grab_decide_task,
    order_expire_task,
    order_fulfil_task,
    order_notify_task,
)
from points.services import InsufficientPoints, PointsRefund, points_redeem, points_refund, points_refund_many

logger = logging.getLogger(__name__)

# One sweep takes about a second and holds its rows' locks that long (a racing payment waits, then loses);
# bigger batches spread the per-statement and commit cost over more orders.
EXPIRE_BATCH_SIZE = 1000
# A paid order is normally fulfilled within seconds by the task its payment queued; one still paid after this
# long lost that message (a broker outage), and the fulfilment sweeper takes it over.
FULFIL_GRACE = timedelta(minutes=2)
FULFIL_SWEEP_BATCH_SIZE = 200  # fulfilled one by one (each grants entitlements): a sweep stays short
MAX_LINES = 20  # an order is a basket, not a bulk import
MAX_QUANTITY = 100
Status = Order.Status


class OrderError(AppError):
    """A request the orders cannot honour; nothing was written. `code` is stable for API clients."""


# ---------------------------------------------------------------------------------------------------------
# Transitions
# ---------------------------------------------------------------------------------------------------------
def order_transition(
    *,
    order_id: int,
    to_status: str,
    source: str,
    actor=None,
    reason: str = "",
    now: datetime | None = None,
    conditions: dict | None = None,
    extra: dict | None = None,
) -> str | None:
    """Move one order to `to_status` from whichever status TRANSITIONS allows, by conditional UPDATE.

    Returns the status it moved from, or None when the order was not in an allowed status (another
    transition won). `conditions` narrow the UPDATE further (e.g. the deadline has passed). Call inside a
    transaction: the caller's follow-up work must commit or roll back with the status change.
    """
    sources = sorted(src for src, dst in TRANSITIONS if dst == to_status)
    if not sources:
        raise ValueError(f"no transition leads to {to_status!r}")
    now = now or timezone.now()
    fields = {"status": to_status, TRANSITION_TIMESTAMPS[to_status]: now, **(extra or {})}
    for from_status in sources:
        if Order.objects.filter(pk=order_id, status=from_status, **(conditions or {})).update(**fields):
            OrderEvent.objects.create(
                order_id=order_id,
                from_status=from_status,
                to_status=to_status,
                actor=actor,
                source=source,
                reason=reason[:300],
            )
            return from_status
    return None


def _orders_release(*, orders: list[dict], reason: str, coupons: bool = True) -> None:
    """Give back what orders that just left `pending` (or were refunded) held: seats, coupons, points.

    Set-based where the data allows (one UPDATE per product and per coupon); points go through the ledger
    one entry per order, keyed by the order, so a second release of the same order changes nothing.
    """
    ids = [row["id"] for row in orders]
    seats = (
        OrderLine.objects.filter(order_id__in=ids, holds_seats=True)
        .values("product_id")
        .annotate(quantity=Sum("quantity"))
        .order_by("product_id")
    )
    for row in seats:
        # Only the transition's winner gets here, once per order, so the lines need no "released" mark.
        Product.objects.filter(pk=row["product_id"]).update(seats_taken=F("seats_taken") - row["quantity"])
    held = [row["user_coupon_id"] for row in orders if row["user_coupon_id"]]
    if coupons and held:
        reserved = UserCoupon.objects.filter(pk__in=held, status=UserCoupon.Status.RESERVED)
        per_coupon = list(reserved.values("coupon_id").annotate(count=Count("id")).order_by("coupon_id"))
        reserved.update(status=UserCoupon.Status.UNUSED)
        for row in per_coupon:
            Coupon.objects.filter(pk=row["coupon_id"]).update(times_used=F("times_used") - row["count"])
    refunds = [
        PointsRefund(
            user_id=row["user_id"],
            amount=row["points_redeemed"],
            idempotency_key=f"order:{row['number']}:restore",
            order_number=row["number"],
        )
        for row in sorted(orders, key=lambda r: r["id"])
        if row["points_redeemed"]
    ]
    if len(refunds) == 1:  # the single-order paths go through the points engine's own service
        refund = refunds[0]
        points_refund(
            user_id=refund.user_id,
            amount=refund.amount,
            idempotency_key=refund.idempotency_key,
            order_number=refund.order_number,
            reason=reason,
        )
    else:
        points_refund_many(refunds=refunds, reason=reason)


RELEASE_FIELDS = ("id", "number", "user_id", "points_redeemed", "user_coupon_id")


def _release_row(order: Order) -> dict:
    return {name: getattr(order, name) for name in RELEASE_FIELDS}


def _enqueue(task, *, eta: datetime | None = None, **kwargs) -> None:
    """Publish after commit; the expiry and fulfilment sweepers are the source of truth, so a lost message
    costs a delay (backoffice.publishing logs it once)."""
    task_publish_on_commit(task, kwargs=kwargs, eta=eta)


# ---------------------------------------------------------------------------------------------------------
# Placing
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LineRequest:
    sku: str
    quantity: int


def _new_number(now: datetime) -> str:
    return f"{now:%y%m%d}{secrets.token_hex(5).upper()}"


def _seats_take(*, product_id: int, quantity: int) -> bool:
    """Take seats with one conditional UPDATE: it matches only while enough are left, so however many
    transactions race, the product is never sold past its capacity."""
    return bool(
        Product.objects.filter(pk=product_id, capacity__isnull=False, seats_taken__lte=F("capacity") - quantity).update(
            seats_taken=F("seats_taken") + quantity
        )
    )


def _coupon_reserve(*, user, code: str, now: datetime) -> tuple[UserCoupon, Coupon]:
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
            if not _seats_take(product_id=product.pk, quantity=quantities[product.sku]):
                raise OrderError(
                    "sold_out", _("Not enough seats left for %s.") % product.sku, status=409, field="lines"
                )
            seated.add(product.sku)

        user_coupon, discount = None, Decimal("0")
        if coupon_code:
            user_coupon, coupon = _coupon_reserve(user=user, code=coupon_code, now=now)
            discount = coupon.discount_for(subtotal)
        points_value = points * POINT_VALUE
        if points_value > subtotal - discount:
            raise OrderError("too_many_points", _("Points cover more than the amount left to pay."), field="points")

        order = Order.objects.create(
            number=_new_number(now),
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
        OrderEvent.objects.create(order=order, to_status=Status.PENDING, actor=user, source="user", reason="placed")
        if order.total == 0:  # points and coupon cover it all: nothing to wait for
            _order_settle(order=order, source="system", reason="nothing to pay", now=now)
        else:
            _enqueue(order_expire_task, eta=order.expires_at, order_id=order.pk)
    order.refresh_from_db()
    return order


# ---------------------------------------------------------------------------------------------------------
# Payment
# ---------------------------------------------------------------------------------------------------------
def _order_settle(*, order: Order, source: str, reason: str, now: datetime) -> bool:
    """pending -> paid, then the coupon is used for good and fulfilment is queued. Inside a transaction."""
    if not order_transition(order_id=order.pk, to_status=Status.PAID, source=source, reason=reason, now=now):
        return False
    if order.user_coupon_id:
        UserCoupon.objects.filter(pk=order.user_coupon_id, status=UserCoupon.Status.RESERVED).update(
            status=UserCoupon.Status.USED
        )
    _enqueue(order_fulfil_task, order_id=order.pk)
    _enqueue(order_notify_task, order_ids=[order.pk], event="paid")
    return True


class PaymentRejected(AppError):
    """A payment notice that is recorded nowhere (unknown order, wrong amount, replayed event)."""


def payment_record(
    *,
    event_id: str,
    order_number: str,
    amount: Decimal,
    provider_status: str,
    raw_body: str,
    signed_at: datetime,
    now: datetime | None = None,
) -> PaymentEvent:
    """Apply a verified payment callback once. A payment for an order that is no longer pending never
    revives it: it is recorded and the order is flagged for refund."""
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        order = Order.objects.filter(number=order_number).first()
        if order is None:
            raise PaymentRejected("unknown_order", _("No order with this number."), status=404)
        if amount != order.total:
            raise PaymentRejected("amount_mismatch", _("The amount does not match the order."), status=422)
        try:
            with transaction.atomic():  # a concurrent delivery of the same event waits here, then fails
                event = PaymentEvent.objects.create(
                    provider_event_id=event_id,
                    order=order,
                    status=provider_status,
                    amount=amount,
                    raw_body=raw_body,
                    signed_at=signed_at,
                    outcome=PaymentEvent.Outcome.FAILED,
                )
        except IntegrityError:
            raise PaymentRejected("replayed_event", _("This event was already received."), status=409) from None
        if provider_status == "succeeded":
            if _order_settle(order=order, source="payment callback", reason=f"payment {event_id}", now=now):
                event.outcome = PaymentEvent.Outcome.PAID
            else:
                order.refresh_from_db(fields=["status"])
                event.outcome = (
                    PaymentEvent.Outcome.DUPLICATE
                    if order.status in (Status.PAID, Status.FULFILLED)
                    else PaymentEvent.Outcome.LATE
                )
                Order.objects.filter(pk=order.pk).update(needs_refund=True)
                OrderEvent.objects.create(
                    order=order,
                    from_status=order.status,
                    to_status=order.status,
                    source="payment callback",
                    reason=f"payment {event_id} arrived while {order.status}: flagged for refund",
                )
                logger.warning("payment %s for order %s (%s) needs a refund", event_id, order.number, order.status)
            event.save(update_fields=["outcome"])
    return event


# ---------------------------------------------------------------------------------------------------------
# Expiry, cancellation, fulfilment, refund
# ---------------------------------------------------------------------------------------------------------
def order_expire(*, order_id: int, now: datetime | None = None, source: str = "orders.expire") -> bool:
    """Expire one order if it is still pending past its deadline (the ETA fast path). True if it won."""
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        if not order_transition(
            order_id=order_id,
            to_status=Status.EXPIRED,
            source=source,
            reason="payment deadline passed",
            now=now,
            conditions={"expires_at__lte": now},
        ):
            return False
        order = Order.objects.get(pk=order_id)
        _orders_release(orders=[_release_row(order)], reason=f"order {order.number} expired")
        _enqueue(order_notify_task, order_ids=[order_id], event="expired")
    return True


def _events_insert(*, order_ids: list[int], from_status: str, to_status: str, source: str, reason: str, now) -> None:
    """One INSERT ... SELECT for a batch's events: no model instance per row (a third of a sweep's Python)."""
    table = connection.ops.quote_name(OrderEvent._meta.db_table)
    orders = connection.ops.quote_name(Order._meta.db_table)
    placeholders = ", ".join(["%s"] * len(order_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (order_id, from_status, to_status, actor_id, source, reason, created_at) "  # noqa: S608
            f"SELECT id, %s, %s, NULL, %s, %s, %s FROM {orders} WHERE id IN ({placeholders}) ORDER BY id",
            [from_status, to_status, source, reason, connection.ops.adapt_datetimefield_value(now), *order_ids],
        )


def order_expire_overdue(*, now: datetime | None = None, batch_size: int = EXPIRE_BATCH_SIZE) -> int:
    """Expire one bounded batch of overdue pending orders with set-based updates; returns how many.

    The rows are claimed with FOR UPDATE SKIP LOCKED, so sweepers running side by side take disjoint
    batches, and a payment racing for one of them waits and then finds it expired.
    """
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        rows = list(
            Order.objects.select_for_update(skip_locked=True)
            .filter(status=Status.PENDING, expires_at__lte=now)
            .order_by("expires_at", "id")
            .values(*RELEASE_FIELDS)[:batch_size]
        )
        if not rows:
            return 0
        ids = [row["id"] for row in rows]
        updated = Order.objects.filter(pk__in=ids, status=Status.PENDING).update(status=Status.EXPIRED, expired_at=now)
        if updated != len(ids):  # impossible while the rows are locked; refuse to restore twice if it happens
            raise RuntimeError(f"expired {updated} of {len(ids)} locked orders")
        _events_insert(
            order_ids=ids, from_status=Status.PENDING, to_status=Status.EXPIRED, source="orders.expire_overdue",
            reason="payment deadline passed", now=now,
        )  # fmt: skip
        _orders_release(orders=rows, reason="order expired")
        _enqueue(order_notify_task, order_ids=ids, event="expired")
    return len(rows)


def order_cancel(*, order: Order, actor, reason: str, source: str = "user") -> bool:
    """pending -> cancelled by the buyer or staff, giving back seats, coupon and points. True if it won."""
    with transaction.atomic(durable=True):
        if not order_transition(
            order_id=order.pk,
            to_status=Status.CANCELLED,
            source=source,
            actor=actor,
            reason=reason,
            extra={"cancel_reason": reason[:300]},
        ):
            return False
        _orders_release(orders=[_release_row(order)], reason=f"order {order.number} cancelled")
    return True


def order_fulfil(*, order_id: int) -> bool:
    """paid -> fulfilled, granting one entitlement per product. Idempotent: False once done."""
    with transaction.atomic(durable=True):
        if not order_transition(
            order_id=order_id, to_status=Status.FULFILLED, source="orders.fulfil", reason="entitlements granted"
        ):
            return False
        order = Order.objects.get(pk=order_id)
        Entitlement.objects.bulk_create(
            Entitlement(user_id=order.user_id, product_id=product_id, order=order)
            for product_id in order.lines.values_list("product_id", flat=True)
        )
    return True


def order_fulfil_overdue(*, now: datetime | None = None, batch_size: int = FULFIL_SWEEP_BATCH_SIZE) -> int:
    """Fulfil paid orders whose fulfilment task never ran (the broker is not a database); returns how many."""
    cutoff = (now or timezone.now()) - FULFIL_GRACE
    stuck = Order.objects.filter(status=Status.PAID, paid_at__lte=cutoff).order_by("paid_at", "id")
    return sum(order_fulfil(order_id=order_id) for order_id in stuck.values_list("id", flat=True)[:batch_size])


def order_mark_refunded(*, order: Order, staff_user, reason: str) -> bool:
    """Staff record a refund: a paid or fulfilled order becomes refunded (seats and points given back,
    entitlements revoked); an expired or cancelled order flagged for a late payment has its flag cleared."""
    now = timezone.now()
    with transaction.atomic(durable=True):
        if order_transition(
            order_id=order.pk,
            to_status=Status.REFUNDED,
            source="staff",
            actor=staff_user,
            reason=reason,
            now=now,
            extra={"needs_refund": False},
        ):
            _orders_release(orders=[_release_row(order)], reason=f"order {order.number} refunded", coupons=False)
            Entitlement.objects.filter(order=order, revoked_at__isnull=True).update(revoked_at=now)
            return True
        current = Order.objects.select_for_update().get(pk=order.pk)
        if not current.needs_refund:
            return False
        Order.objects.filter(pk=order.pk).update(needs_refund=False, refunded_at=now)
        OrderEvent.objects.create(
            order=order,
            from_status=current.status,
            to_status=current.status,
            source="staff",
            actor=staff_user,
            reason=f"late payment refunded: {reason}"[:300],
        )
    return True


NOTICES = {
    "paid": (
        gettext_lazy("Order %(number)s is paid"),
        gettext_lazy("Thank you: order %(number)s (%(total)s) is paid and your purchase is ready."),
    ),
    "expired": (
        gettext_lazy("Order %(number)s has expired"),
        gettext_lazy(
            "Order %(number)s was not paid in time and has expired; the points and coupon it used are yours again."
        ),
    ),
}


def order_notify(*, order_ids: list[int], event: str) -> int:
    """Queue an email and/or SMS per order (whichever contact the buyer gave); returns how many."""
    subject, body = NOTICES[event]
    queued = 0
    for order in Order.objects.filter(pk__in=order_ids).select_related("user").order_by("id"):
        values = {"number": order.number, "total": order.total}
        if order.user.email:
            email_queue(to=order.user.email, subject=str(subject) % values, body=str(body) % values)
            queued += 1
        if order.phone:
            sms_queue(phone=order.phone, message=str(body) % values)
            queued += 1
    return queued


# ---------------------------------------------------------------------------------------------------------
# Early-access grab
# ---------------------------------------------------------------------------------------------------------
def grab_request(*, user, sku: str) -> tuple[GrabRequest, bool]:
    """Ask for a limited product; the decision is a task's. Asking again returns the first request."""
    with transaction.atomic(durable=True):
        product = Product.objects.filter(sku=sku, is_active=True, capacity__isnull=False).first()
        if product is None:
            raise OrderError("unknown_offer", _("There is no such limited offer."), status=404)
        request, created = GrabRequest.objects.get_or_create(user=user, product=product)
        if created:
            _enqueue(grab_decide_task, request_id=request.pk)
    return request, created


def grab_decide(*, request_id: int) -> str:
    """Grant a seat if one is left, else refuse; the seat counter makes over-granting impossible."""
    with transaction.atomic(durable=True):
        request = GrabRequest.objects.select_for_update().get(pk=request_id)
        if request.status != GrabRequest.Status.PENDING:
            return request.status
        if _seats_take(product_id=request.product_id, quantity=1):
            Entitlement.objects.create(user_id=request.user_id, product_id=request.product_id)
            request.status = GrabRequest.Status.GRANTED
        else:
            request.status = GrabRequest.Status.REFUSED
        request.decided_at = timezone.now()
        request.save(update_fields=["status", "decided_at"])
    return request.status
