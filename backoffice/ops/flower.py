"""The Flower proxy: `/ops/flower/...` forwarded to the Flower process on loopback.

Flower runs with `--url_prefix=ops/flower` and basic auth whose credentials only the portal holds; this
proxy adds them after the portal's own permission check, so no request reaches Flower (its pages, static
files, API, `/metrics` or `/healthcheck`) without `portal_ops.view_ops`. Only reads are forwarded (GET and HEAD,
and the one read Flower makes by POST, its task table, after the portal's CSRF check): control goes through the
portal's CSRF-protected, audited actions on the workers page (Flower's own control endpoints would otherwise be
reachable with nothing but the proxy's credentials).
"""

import base64
import hashlib
import posixpath
import secrets
from urllib.parse import quote

import httpx
from csp.constants import SELF
from django.conf import settings
from django.contrib import admin
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.middleware.csrf import CsrfViewMiddleware, get_token
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

CONNECT_TIMEOUT_S = 1.0  # Flower down must answer quickly with a message, not hang the page
READ_TIMEOUT_S = 15.0
READ_METHODS = ("GET", "HEAD")
# Reads that Flower 2.2 makes by POST (its task table): let through with the portal's CSRF check; nothing else.
POST_READ_PATHS = ("tasks/datatable",)
FLOWER_XSRF_COOKIE = "_xsrf"  # Tornado's name, read by Flower's script
PREFIX = "/ops/flower/"
# Request headers passed to Flower; everything else (cookies, the portal's session) stays here.
FORWARDED_REQUEST_HEADERS = (
    "accept",
    "accept-language",
    "if-none-match",
    "if-modified-since",
    "range",
    "x-requested-with",
)
# Response headers passed back. Not Set-Cookie: Flower's cookies have no business in the portal's origin. Not
# Cache-Control or Expires: every proxied answer is `no-store` (pages and the API hold task arguments).
FORWARDED_RESPONSE_HEADERS = (
    "content-type",
    "content-length",
    "etag",
    "last-modified",
    "content-disposition",
    "content-range",
    "accept-ranges",
)

# The portal's policy (settings.CONTENT_SECURITY_POLICY) with what Flower's own pages need: being framed by the
# portal's Flower page, and the one inline script Flower 2.2 writes (workers.html: `var autorefresh = N;`),
# allowed by its hash, never by 'unsafe-inline'.
FLOWER_INLINE_SCRIPTS = [f"\nvar autorefresh = {value};\n" for value in (0, 1)]  # as Tornado renders it
CONTENT_SECURITY_POLICY = {
    "frame-ancestors": [SELF],
    "script-src": [
        SELF,
        *(
            f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
            for script in FLOWER_INLINE_SCRIPTS
        ),
    ],
}

_clients: dict[str, httpx.Client] = {}


def client() -> httpx.Client:
    """One pooled client per process and Flower socket (httpx.Client is thread-safe)."""
    socket = settings.FLOWER_UNIX_SOCKET
    if socket not in _clients:
        _clients[socket] = httpx.Client(
            timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            follow_redirects=False,
            transport=httpx.HTTPTransport(uds=socket) if socket else None,
        )
    return _clients[socket]


def upstream_headers(request) -> dict[str, str]:
    headers = {name: request.headers[name] for name in FORWARDED_REQUEST_HEADERS if name in request.headers}
    headers["accept-encoding"] = "identity"  # bodies are streamed through unchanged
    if settings.FLOWER_BASIC_AUTH:
        token = base64.b64encode(settings.FLOWER_BASIC_AUTH.encode()).decode()
        headers["authorization"] = f"Basic {token}"
    return headers


PATH_SAFE = "/@:+,;=!$&'()*~"  # RFC 3986 path characters kept as they are (worker names hold `@`)


class BadPath(ValueError):
    """A proxied path that must not reach Flower: control characters, or dot segments leaving the prefix."""


def normalise_path(path: str) -> str:
    """The path below the prefix with `.` and `..` resolved; raises BadPath if it would leave the prefix.

    Django has already decoded `%2e%2e` and `%2f`, so the segments seen here are the ones Flower would see.
    """
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in path) or "\\" in path:
        raise BadPath("control character or backslash in the path")
    if not path:
        return ""
    depth = 0
    for segment in path.split("/"):
        if segment == "..":
            depth -= 1
            if depth < 0:
                raise BadPath("the path leaves the Flower prefix")
        elif segment not in ("", "."):
            depth += 1
    normalised = posixpath.normpath("/" + path).lstrip("/")
    if path.endswith("/") and normalised:
        normalised += "/"  # Flower tells `workers/` from `workers`
    return "" if normalised == "." else normalised


def upstream_url(path: str) -> str:
    """Flower's URL for a normalised path, re-quoted so that a decoded `?` or `#` stays part of the path."""
    return f"{settings.FLOWER_URL.rstrip('/')}/{quote(path, safe=PATH_SAFE)}"


def _rewrite_location(location: str) -> str:
    """Flower redirects to its own address; the browser must stay on the portal's."""
    base = settings.FLOWER_URL.rstrip("/")
    origin = base.split("/ops/flower", 1)[0]
    return location[len(origin) :] if location.startswith(origin) else location


def _unavailable(request, path: str, reason: str) -> HttpResponse:
    message = _("Flower is not reachable right now (%(reason)s). The workers page still works without it.") % {
        "reason": reason
    }
    if path.startswith("api/") or "json" in request.headers.get("accept", ""):
        return JsonResponse({"detail": message}, status=503)
    return TemplateResponse(
        request,
        "ops/flower_unavailable.html",
        {**admin.site.each_context(request), "title": _("Flower"), "message": message},
        status=503,
    )


def _refuse_control() -> HttpResponse:
    response = JsonResponse(
        {"detail": _("Flower is read-only through the portal: use the workers page's control actions.")},
        status=405,
    )
    response["Allow"] = ", ".join(READ_METHODS)
    return response


def _check_csrf(request) -> HttpResponse | None:
    """The portal's own CSRF check for a POST read. Flower's script sends the token it finds in the `_xsrf`
    cookie as X-XSRFToken; the proxy sets that cookie to the portal's CSRF token (see `proxy`)."""
    if "HTTP_X_XSRFTOKEN" in request.META:
        request.META.setdefault(settings.CSRF_HEADER_NAME, request.META["HTTP_X_XSRFTOKEN"])
    return CsrfViewMiddleware(lambda request: None).process_view(request, None, (), {})


def proxy(request, path: str) -> HttpResponse:
    """Forward one read to Flower and stream its answer back."""
    try:
        path = normalise_path(path)
    except BadPath:
        if request.method not in READ_METHODS and (refused := _check_csrf(request)) is not None:
            return refused
        return JsonResponse({"detail": _("This path is not part of Flower.")}, status=400)
    content, headers = None, upstream_headers(request)
    if request.method not in READ_METHODS:
        if (refused := _check_csrf(request)) is not None:
            return refused
        if request.method != "POST" or path not in POST_READ_PATHS:
            return _refuse_control()
        # Flower's own XSRF check wants a cookie and a header that agree: a fresh pair per request.
        token = secrets.token_hex(16)
        headers.update({"cookie": f"{FLOWER_XSRF_COOKIE}={token}", "x-xsrftoken": token})
        headers["content-type"] = request.content_type or "application/x-www-form-urlencoded"
        content = request.body
    upstream_request = client().build_request(
        request.method,
        upstream_url(path),
        params=list(_query(request)),
        headers=headers,
        content=content,
    )
    try:
        upstream = client().send(upstream_request, stream=True)
    except httpx.TimeoutException:
        return _unavailable(request, path, _("it did not answer in time"))
    except httpx.HTTPError:
        where = "FLOWER_UNIX_SOCKET" if settings.FLOWER_UNIX_SOCKET else "FLOWER_URL"
        return _unavailable(request, path, _("no answer at the configured %(setting)s") % {"setting": where})
    if upstream.status_code == 401:
        upstream.close()
        return _unavailable(request, path, _("it refused the portal's credentials: check FLOWER_BASIC_AUTH"))

    response = StreamingHttpResponse(upstream.iter_raw(), status=upstream.status_code)
    response._resource_closers.append(upstream.close)  # Django closes it when the response is done
    for name in FORWARDED_RESPONSE_HEADERS:
        if name in upstream.headers:
            response[name] = upstream.headers[name]
    if "location" in upstream.headers:
        response["Location"] = _rewrite_location(upstream.headers["location"])
    if response.get("content-type", "").startswith("text/html"):
        # Flower's script reads its XSRF token from this cookie: give it the portal's CSRF token instead.
        response.set_cookie(
            FLOWER_XSRF_COOKIE,
            get_token(request),
            path=PREFIX,
            secure=settings.CSRF_COOKIE_SECURE,
            samesite="Strict",
        )
    return response


def _query(request):
    for key, values in request.GET.lists():
        for value in values:
            yield key, value
