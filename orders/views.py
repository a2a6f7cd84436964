"""The business JSON endpoints: place, read and cancel orders, the signed payment callback, SMS codes and
the early-access grab. Thin: parse, call a service, answer JSON; every bad input is a 4xx with a body."""

import json
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

from backoffice.notify.services import SmsCodeError, sms_code_issue
from orders.models import GrabRequest, Order
from orders.payments import MAX_BODY_BYTES, SignatureError, signature_verify
from orders.selectors import order_as_json
from orders.services import (
    LineRequest,
    OrderError,
    PaymentRejected,
    grab_request,
    order_cancel,
    order_place,
    payment_record,
)

logger = logging.getLogger(__name__)
MAX_JSON_BYTES = 64 * 1024
NUL_ESCAPE = b"\\u0000"  # JSON's only spelling of NUL, which PostgreSQL text cannot hold


def _error(code: str, message: str, status: int, **extra) -> JsonResponse:
    return JsonResponse({"error": code, "message": str(message), **extra}, status=status)


def _json_body(request) -> dict:
    if len(request.body) > MAX_JSON_BYTES:
        raise OrderError("too_large", _("The request body is too large."), status=413)
    try:
        if NUL_ESCAPE in request.body:
            raise ValueError("NUL in a string")
        data = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise OrderError("bad_json", _("The body must be a JSON object.")) from None
    if not isinstance(data, dict):
        raise OrderError("bad_json", _("The body must be a JSON object."))
    return data


def _login_required(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return _error("not_authenticated", _("Sign in first."), 401)
        try:
            return view(request, *args, **kwargs)
        except OrderError as exc:
            return JsonResponse(exc.as_json(), status=exc.status)

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
        orders = Order.objects.filter(user=request.user).prefetch_related("lines__product")[:50]
        return JsonResponse({"orders": [order_as_json(order) for order in orders]})
    data = _json_body(request)
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
    order = get_object_or_404(Order.objects.prefetch_related("lines__product"), number=number, user=request.user)
    return JsonResponse(order_as_json(order))


@transaction.non_atomic_requests  # its service commits durably: never inside a request transaction
@require_POST
@_login_required
def order_cancel_view(request, number: str):
    order = get_object_or_404(Order, number=number, user=request.user)
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
        return _error("too_large", _("The body is too large."), 413)
    body = request.body
    if len(body) > MAX_BODY_BYTES:
        return _error("too_large", _("The body is too large."), 413)
    if not settings.PAYMENT_WEBHOOK_SECRET:
        return _error("not_configured", _("Payments are not configured."), 503)
    try:
        signed = signature_verify(
            header=request.headers.get("X-Signature", ""), body=body, secret=settings.PAYMENT_WEBHOOK_SECRET
        )
    except SignatureError as exc:
        logger.warning("payment callback refused: %s", exc.message)
        return _error(exc.code, exc.message, 401 if exc.code == "bad_signature" else 400)
    try:
        if NUL_ESCAPE in body:
            raise ValueError("NUL in a string")
        data = json.loads(body.decode())
        event_id, number, status = data["event_id"], data["order_number"], data["status"]
        amount = Decimal(data["amount"]) if isinstance(data["amount"], str) else None
    except (ValueError, UnicodeDecodeError, KeyError, TypeError, InvalidOperation):
        return _error("bad_json", _("Expected JSON with event_id, order_number, amount and status."), 400)
    if not (isinstance(event_id, str) and 0 < len(event_id) <= 128 and isinstance(number, str)):
        return _error("bad_json", _("event_id and order_number must be strings."), 400)
    if status not in ("succeeded", "failed"):
        return _error("bad_status", _('status must be "succeeded" or "failed".'), 400)
    if amount is None or not amount.is_finite() or amount.as_tuple().exponent < -2:
        return _error("bad_amount", _('amount must be a decimal string such as "12.50".'), 400)
    try:
        event = payment_record(
            event_id=event_id,
            order_number=number,
            amount=amount,
            provider_status=status,
            raw_body=body.decode(),  # decodes: json.loads above took it as UTF-8
            signed_at=datetime.fromtimestamp(signed, tz=UTC),
        )
    except PaymentRejected as exc:
        return _error(exc.code, exc.message, exc.status)
    return JsonResponse({"received": True, "outcome": event.outcome})


@require_POST
def sms_code_view(request):
    try:
        data = _json_body(request)
        ttl = sms_code_issue(phone=str(data.get("phone") or ""))
    except OrderError as exc:
        return JsonResponse(exc.as_json(), status=exc.status)
    except SmsCodeError as exc:
        response = _error(exc.code, exc.message, exc.status)
        if exc.retry_after:
            response["Retry-After"] = str(exc.retry_after)
        return response
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
