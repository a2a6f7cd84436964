"""The application's errors and their one JSON shape, for every endpoint under /api/.

Services raise an `AppError` (or a subclass named for their domain) when they cannot honour a request; nothing
was written. An API view lets it propagate: `ApiErrorMiddleware` answers it as

    {"error": "<stable code>", "message": "<text in the client's language>", ...extra fields}

with the error's status. Whatever else answers an /api/ request with an error (Django's 404, 405, the CSRF check,
a 500) is given the same shape by the middleware, so a client never has to parse an HTML page.
"""

import json
from http import HTTPStatus

from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import csrf

API_PREFIX = "/api/"
MAX_JSON_BYTES = 64 * 1024  # business requests are small; a larger body is refused before it is parsed
NUL_ESCAPE = b"\\u0000"  # JSON's only spelling of NUL, which PostgreSQL text cannot hold

# The code and message an /api/ error answer gets when its view did not choose them.
STATUS_ERRORS = {
    400: ("bad_request", gettext_lazy("The request is not valid.")),
    401: ("not_authenticated", gettext_lazy("Sign in first.")),
    403: ("forbidden", gettext_lazy("You may not do this.")),
    404: ("not_found", gettext_lazy("There is nothing here.")),
    405: ("method_not_allowed", gettext_lazy("This method is not allowed here.")),
    413: ("too_large", gettext_lazy("The request body is too large.")),
    429: ("too_many_requests", gettext_lazy("Too many requests; try again later.")),
    500: ("server_error", gettext_lazy("Something went wrong on our side; nothing was changed.")),
    503: ("unavailable", gettext_lazy("The service is unavailable; try again in a moment.")),
}


class AppError(Exception):
    """A request the application cannot honour; nothing was written. `code` is stable for API clients."""

    def __init__(
        self, code: str, message, *, status: int = 400, field: str | None = None, retry_after: int | None = None
    ):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status
        self.field, self.retry_after = field, retry_after

    def as_json(self) -> dict:
        body = {"error": self.code, "message": str(self.message)}
        if self.field:
            body["field"] = self.field
        return body

    def as_response(self) -> JsonResponse:
        response = JsonResponse(self.as_json(), status=self.status)
        if self.retry_after:
            response["Retry-After"] = str(self.retry_after)
        return response


def json_error(code: str, message, status: int, **extra) -> JsonResponse:
    return JsonResponse({"error": code, "message": str(message), **extra}, status=status)


def _has_surrogate(value) -> bool:
    """A lone surrogate (JSON's "\\ud800") is no character at all: no database, file or email can hold it."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_surrogate(key) or _has_surrogate(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(item) for item in value)
    return False


def json_object(body: bytes, *, max_bytes: int = MAX_JSON_BYTES) -> dict:
    """Parse a request body that must be a JSON object; AppError (4xx) for anything else.

    Refused: too large, not UTF-8, not JSON, nested too deeply for the parser (RecursionError), not an object,
    or holding a NUL or a lone surrogate anywhere.
    """
    if len(body) > max_bytes:
        raise AppError("too_large", _("The request body is too large."), status=413)
    try:
        if NUL_ESCAPE in body:
            raise ValueError("NUL in a string")
        data = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise AppError("bad_json", _("The body must be a JSON object.")) from None
    if not isinstance(data, dict):
        raise AppError("bad_json", _("The body must be a JSON object."))
    try:
        surrogate = _has_surrogate(data)
    except RecursionError:  # nested deeper than this walk can go, though the parser took it
        surrogate = True
    if surrogate:
        raise AppError("bad_text", _("The body holds text that is not valid Unicode."))
    return data


def is_api(request) -> bool:
    return request.path_info.startswith(API_PREFIX)


def csrf_failure(request, reason: str = "", template_name: str = csrf.CSRF_FAILURE_TEMPLATE_NAME):
    """CSRF_FAILURE_VIEW: the JSON shape under /api/, Django's own page elsewhere."""
    if is_api(request):
        return json_error("csrf_failed", _("CSRF verification failed: %(reason)s") % {"reason": reason}, 403)
    return csrf.csrf_failure(request, reason=reason, template_name=template_name)


class ApiErrorMiddleware:
    """Answers every /api/ error in the one JSON shape. Placed first, so it also sees what the middleware below
    it answer (CSRF, locale redirects, a 500 page)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code < 400 or not is_api(request) or _is_json(response):
            return response
        code, message = STATUS_ERRORS.get(response.status_code, (None, None))
        if code is None:
            code, message = "error", _phrase(response.status_code)
        replacement = json_error(code, message, response.status_code)
        for header in ("Allow", "Retry-After", "WWW-Authenticate"):
            if header in response:
                replacement[header] = response[header]
        return replacement

    def process_exception(self, request, exception):
        if isinstance(exception, AppError) and is_api(request):
            return exception.as_response()
        return None


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return str(status)


def _is_json(response) -> bool:
    return response.get("Content-Type", "").startswith("application/json")
