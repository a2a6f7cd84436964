"""The business JSON endpoints: place, read and cancel orders, the signed payment callback, SMS codes and
the early-access grab. Thin: parse, call a service, answer JSON. Every bad input raises an AppError, which
backoffice.errors answers as a 4xx in the API's one JSON error shape."""

import logging
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import wraps

from django.conf import settings
from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backoffice.errors import AppError, json_error, json_object
from backoffice.notify.services import sms_code_issue
from orders.models import GrabRequest
from orders.payments import MAX_BODY_BYTES, SignatureError, signature_verify
from orders.selectors import order_as_json, orders_of, orders_recent
from orders.services import (
    LineRequest,
    OrderError,
    grab_request,
    order_cancel,
    order_place,
    payment_record,
)

logger = logging.getLogger(__name__)


def _login_required(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return json_error("not_authenticated", _("Sign in first."), 401)
        return view(request, *args, **kwargs)

    return wrapper


def _int(value, *, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise OrderError("bad_" + field, _("%s must be a whole number.") % field, field=field)
    return value


@transaction.non_atomic_requests  # its service commits durably: never inside a request transaction
@require_http_methods(["GET", "POST"])
@_login_required
def orders_view(request):
    if request.method == "GET":
        return JsonResponse({"orders": [order_as_json(order) for order in orders_recent(user=request.user)]})
    data = json_object(request.body)
    raw_lines = data.get("lines")
    if not isinstance(raw_lines, list) or not all(isinstance(line, dict) for line in raw_lines):
        raise OrderError("bad_lines", _('"lines" must be a list of {"sku", "quantity"} objects.'), field="lines")
    lines = []
    for line in raw_lines:
        if not isinstance(line.get("sku"), str):
            raise OrderError("bad_lines", _("Each line needs a sku."), field="lines")
        lines.append(LineRequest(sku=line["sku"], quantity=_int(line.get("quantity", 1), field="quantity")))
    coupon = data.get("coupon") or ""
    phone = data.get("phone") or ""
    if not isinstance(coupon, str) or not isinstance(phone, str) or len(phone) > 32:
        raise OrderError("bad_request", _('"coupon" and "phone" must be strings.'))
    order = order_place(
        user=request.user,
        lines=lines,
        coupon_code=coupon.strip(),
        points=_int(data.get("points", 0), field="points"),
        phone=phone.strip(),
    )
    return JsonResponse(order_as_json(order), status=201)


@require_GET
@_login_required
def order_detail_view(request, number: str):
    order = get_object_or_404(orders_of(user=request.user), number=number)
    return JsonResponse(order_as_json(order))


@transaction.non_atomic_requests  # its service commits durably: never inside a request transaction
@require_POST
@_login_required
def order_cancel_view(request, number: str):
    order = get_object_or_404(orders_of(user=request.user), number=number)
    if not order_cancel(order=order, actor=request.user, reason="cancelled by the buyer"):
        order.refresh_from_db()
        raise OrderError(
            "not_cancellable", _("Only a pending order can be cancelled; this one is %s.") % order.status, status=409
        )
    order.refresh_from_db()
    return JsonResponse(order_as_json(order))


@transaction.non_atomic_requests  # its service commits durably: never inside a request transaction
@csrf_exempt  # the provider cannot hold a CSRF token; the HMAC signature is the authentication
@require_POST
def payment_callback_view(request):
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > MAX_BODY_BYTES:
        raise AppError("too_large", _("The body is too large."), status=413)
    body = request.body
    if len(body) > MAX_BODY_BYTES:
        raise AppError("too_large", _("The body is too large."), status=413)
    if not settings.PAYMENT_WEBHOOK_SECRET:
        raise AppError("not_configured", _("Payments are not configured."), status=503)
    try:
        signed = signature_verify(
            header=request.headers.get("X-Signature", ""), body=body, secret=settings.PAYMENT_WEBHOOK_SECRET
        )
    except SignatureError as exc:
        logger.warning("payment callback refused: %s", exc.message)
        raise
    data = json_object(body, max_bytes=MAX_BODY_BYTES)
    try:
        event_id, number, status = data["event_id"], data["order_number"], data["status"]
        amount = Decimal(data["amount"]) if isinstance(data["amount"], str) else None
    except (KeyError, InvalidOperation):
        raise AppError("bad_json", _("Expected JSON with event_id, order_number, amount and status.")) from None
    if not (isinstance(event_id, str) and 0 < len(event_id) <= 128 and isinstance(number, str)):
        raise AppError("bad_json", _("event_id and order_number must be strings."))
    if status not in ("succeeded", "failed"):
        raise AppError("bad_status", _('status must be "succeeded" or "failed".'))
    if amount is None or not amount.is_finite() or amount.as_tuple().exponent < -2:
        raise AppError("bad_amount", _('amount must be a decimal string such as "12.50".'))
    event = payment_record(
        event_id=event_id,
        order_number=number,
        amount=amount,
        provider_status=status,
        raw_body=body.decode(),  # decodes: json_object above took it as UTF-8
        signed_at=datetime.fromtimestamp(signed, tz=UTC),
    )
    return JsonResponse({"received": True, "outcome": event.outcome})


@require_POST
def sms_code_view(request):
    data = json_object(request.body)
    ttl = sms_code_issue(phone=str(data.get("phone") or ""))
    return JsonResponse({"sent": True, "expires_in": ttl}, status=202)


@transaction.non_atomic_requests  # its service commits durably: never inside a request transaction
@require_http_methods(["GET", "POST"])
@_login_required
def grab_view(request, sku: str):
    """POST asks for early access (202 while a task decides); GET polls the outcome."""
    if request.method == "POST":
        grab, created = grab_request(user=request.user, sku=sku)
        return JsonResponse({"status": grab.status}, status=202 if grab.status == GrabRequest.Status.PENDING else 200)
    grab = get_object_or_404(GrabRequest, user=request.user, product__sku=sku)
    return JsonResponse({"status": grab.status})
