"""The capture middleware: turns successful requests that match an active action into points events.

Place it after AuthenticationMiddleware (system check points.E001). A request that matches nothing costs a
dictionary lookup and a few regular expressions, no query. A match with a successful response and a signed-in
user writes one outbox row before the response leaves, then wakes a worker (best effort, bounded by a short
timeout: see points.capture). A failure here is logged and never changes the response.
"""

import logging

from django.db import DatabaseError

from points import matching
from points.capture import event_capture

logger = logging.getLogger(__name__)

COUNTRY_HEADER = "HTTP_CF_IPCOUNTRY"  # set by a CDN in front of the site; empty when there is none


class PointsCaptureMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        try:
            matches = matching.index.match(request.method, request.path_info)
        except DatabaseError:
            logger.exception("points: could not load the active actions")
            return response
        if matches:
            self._capture(request, response, matches)
        return response

    @staticmethod
    def _capture(request, response, matches) -> None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return
        for action, business_id in matches:
            if not action.succeeded(response):
                continue
            try:
                event_capture(
                    user_id=user.pk,
                    action_id=action.action_id,
                    business_id=business_id,
                    language=getattr(request, "LANGUAGE_CODE", "") or "",
                    country=request.META.get(COUNTRY_HEADER, ""),
                    location=request.path,
                )
            except DatabaseError:
                logger.exception("points: could not record event of action %s for user %s", action.code, user.pk)
