"""The demo host site's JSON endpoints that earn points (session auth; CSRF applies to the POST)."""

from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from backoffice.errors import json_error
from points.selectors import account_summary
from points.services import checkin_create


def _sign_in_first() -> JsonResponse:
    return json_error("not_authenticated", _("Sign in first."), 401)


@require_POST
def checkin(request):
    """Daily check-in. `code` 0 is a new check-in; 1 means already checked in today (and earns nothing)."""
    if not request.user.is_authenticated:
        return _sign_in_first()
    row, created = checkin_create(user_id=request.user.pk)
    if not created:
        return JsonResponse({"code": 1, "day": row.day.isoformat(), "message": _("Already checked in today.")})
    return JsonResponse({"code": 0, "day": row.day.isoformat(), "message": _("Checked in.")})


@require_GET
@ensure_csrf_cookie  # a client reads its CSRF token here before its first POST
def me(request):
    if not request.user.is_authenticated:
        return _sign_in_first()
    return JsonResponse(account_summary(user=request.user))
