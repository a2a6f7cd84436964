"""The capture middleware: turns successful requests that match an active action into points events.

Place it after AuthenticationMiddleware (system check points.E001). The order of the checks keeps what strangers
can make it do small: a request whose method has no active action costs a dictionary lookup; an anonymous one or
one with an overlong path runs no pattern at all; patterns run in linear time (points.matching).

A 2xx means the event is durable. A signed-in request that matches runs its view inside one transaction, and the
outbox row is written in that same transaction before it commits: if the row cannot be written, the business
write is rolled back too and the client gets a 503 to retry. A 5xx from the view rolls its writes back, as
Django's ATOMIC_REQUESTS would. A view marked `transaction.non_atomic_requests` (one that owns a durable
transaction, as order services do) keeps its own commit; its event is then written just after, best effort.
The wake-up of a worker is sent after the commit and never holds the response (points.capture).
"""

import logging

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, transaction
from django.http import JsonResponse
from django.urls import Resolver404, resolve
from django.utils.translation import gettext as _

from points import matching
from points.capture import event_build, events_capture

logger = logging.getLogger(__name__)

COUNTRY_HEADER = "HTTP_CF_IPCOUNTRY"  # set by a CDN in front of the site; empty when there is none
RETRY_AFTER_SECONDS = "1"


class PointsCaptureMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            candidates = matching.index.candidates(request.method, request.path_info)
        except DatabaseError:
            logger.exception("points: could not load the active actions")
            return self.get_response(request)
        if not candidates:
            return self.get_response(request)
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)  # strangers never run a staff-written pattern
        matches = matching.match_path(candidates, request.path_info)
        if not matches:
            return self.get_response(request)
        if not _view_is_atomic(request):
            response = self.get_response(request)
            try:
                events_capture(events=_events(request, user.pk, response, matches))
            except DatabaseError:
                logger.exception("points: event lost for user %s after a non-atomic view committed", user.pk)
            return response
        try:
            with transaction.atomic():
                response = self.get_response(request)
                if response.status_code >= 500:
                    transaction.set_rollback(True)
                    return response
                events = _events(request, user.pk, response, matches)
                if events and _transaction_started():
                    events_capture(events=events)  # joins the business write, committed with it
                    events = []
            if events:  # the view ran no statement: nothing to join, the insert commits on its own
                events_capture(events=events)
        except DatabaseError:
            logger.exception("points: could not record the event of user %s; the request is rolled back", user.pk)
            return JsonResponse(
                {"code": 503, "error": _("Temporarily unavailable: nothing was saved. Please try again.")},
                status=503,
                headers={"Retry-After": RETRY_AFTER_SECONDS},
            )
        return response


def _transaction_started() -> bool:
    """Whether the request's transaction has run a statement. PostgreSQL's starts at the first statement (psycopg
    sends BEGIN lazily); elsewhere assume it has."""
    raw = connection.connection
    if connection.vendor != "postgresql" or raw is None:
        return True
    return raw.info.transaction_status.name != "IDLE"


def _view_is_atomic(request) -> bool:
    """False for a view marked transaction.non_atomic_requests (it owns its transaction, maybe durable)."""
    try:
        view = resolve(request.path_info, getattr(request, "urlconf", None)).func
    except Resolver404:
        return True
    return DEFAULT_DB_ALIAS not in getattr(view, "_non_atomic_requests", ())


def _events(request, user_id: int, response, matches) -> list:
    """The outbox rows this response earns: one per matched action whose success condition holds."""
    return [
        event_build(
            user_id=user_id,
            action_id=action.action_id,
            business_id=business_id,
            language=getattr(request, "LANGUAGE_CODE", "") or "",
            country=request.META.get(COUNTRY_HEADER, ""),
            location=request.path,
        )
        for action, business_id in matches
        if action.succeeded(response)
    ]
