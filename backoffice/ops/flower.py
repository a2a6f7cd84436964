"""The Flower proxy: `/ops/flower/...` forwarded to the Flower process on loopback.

Flower runs with `--url_prefix=ops/flower` and basic auth whose credentials only the portal holds; this
proxy adds them after the portal's own permission check, so no request reaches Flower (its pages, static
files, API, `/metrics` or `/healthcheck`) without `portal_ops.view_ops`. Only reads are forwarded: control goes
through the portal's CSRF-protected, audited actions on the workers page (Flower's own control endpoints
would otherwise be reachable with nothing but the proxy's credentials). Flower also runs `--read_only`, so it
neither shows its control buttons nor accepts their requests.

One read arrives by POST: Flower 2.2's task table asks `tasks/datatable` with a form-encoded POST. That path
alone is accepted by POST and forwarded to Flower as the GET its handler also answers, so no POST ever reaches
Flower. The portal's CSRF check still applies to it: each Flower page served here carries a line that gives
Flower's jQuery the portal's CSRF token (`CSRF_SNIPPET`).
"""

import base64

import httpx
from django.conf import settings
from django.contrib import admin
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.middleware.csrf import get_token
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

CONNECT_TIMEOUT_S = 1.0  # Flower down must answer quickly with a message, not hang the page
READ_TIMEOUT_S = 15.0
READ_METHODS = ("GET", "HEAD")
# Reads Flower's own pages make by POST (the DataTables loader); forwarded as GET with the form as the query.
READ_POST_PATHS = frozenset({"tasks/datatable"})
# Request headers passed to Flower; everything else (cookies, the portal's session) stays here.
FORWARDED_REQUEST_HEADERS = (
    "accept",
    "accept-language",
    "if-none-match",
    "if-modified-since",
    "range",
    "x-requested-with",
)
# Response headers passed back. Not Set-Cookie: Flower's cookies have no business in the portal's origin.
FORWARDED_RESPONSE_HEADERS = (
    "content-type",
    "content-length",
    "cache-control",
    "etag",
    "last-modified",
    "expires",
    "content-disposition",
    "content-range",
    "accept-ranges",
)

# Added before Flower's </body>: runs after jQuery and flower.js are loaded, before their document-ready code
# builds the task table, so the table's POST carries the token the portal's CSRF check asks for.
CSRF_SNIPPET = '<script>window.jQuery && jQuery.ajaxSetup({headers: {"X-CSRFToken": "%s"}});</script>'

_client: httpx.Client | None = None


def client() -> httpx.Client:
    """One pooled client per process (httpx.Client is thread-safe)."""
    global _client
    if _client is None:
        _client = httpx.Client(timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S), follow_redirects=False)
    return _client


def upstream_headers(request) -> dict[str, str]:
    headers = {name: request.headers[name] for name in FORWARDED_REQUEST_HEADERS if name in request.headers}
    headers["accept-encoding"] = "identity"  # bodies are streamed through unchanged
    if settings.FLOWER_BASIC_AUTH:
        token = base64.b64encode(settings.FLOWER_BASIC_AUTH.encode()).decode()
        headers["authorization"] = f"Basic {token}"
    return headers


def upstream_url(path: str) -> str:
    return f"{settings.FLOWER_URL.rstrip('/')}/{path}"


def _rewrite_location(location: str) -> str:
    """Flower redirects to its own address; the browser must stay on the portal's."""
    base = settings.FLOWER_URL.rstrip("/")
    origin = base.split("/ops/flower", 1)[0]
    return location[len(origin) :] if location.startswith(origin) else location


def is_read(method: str, path: str) -> bool:
    """Whether a request to Flower's `path` (below its prefix) only reads."""
    return method in READ_METHODS or (method == "POST" and path in READ_POST_PATHS)


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


def proxy(request, path: str) -> HttpResponse:
    """Forward one read to Flower and stream its answer back."""
    method, params = request.method, list(_query(request.GET))
    if method == "POST" and is_read(method, path):
        method, params = "GET", params + list(_query(request.POST))
    if method not in READ_METHODS:
        response = JsonResponse(
            {"detail": _("Flower is read-only through the portal: use the workers page's control actions.")},
            status=405,
        )
        response["Allow"] = ", ".join(READ_METHODS)
        return response
    upstream_request = client().build_request(
        method,
        upstream_url(path),
        params=params,
        headers=upstream_headers(request),
    )
    try:
        upstream = client().send(upstream_request, stream=True)
    except httpx.TimeoutException:
        return _unavailable(request, path, _("it did not answer in time"))
    except httpx.HTTPError:
        return _unavailable(request, path, _("no answer at the configured FLOWER_URL"))
    if upstream.status_code == 401:
        upstream.close()
        return _unavailable(request, path, _("it refused the portal's credentials: check FLOWER_BASIC_AUTH"))

    if upstream.headers.get("content-type", "").startswith("text/html") and method == "GET":
        response = HttpResponse(_with_csrf_token(request, upstream), status=upstream.status_code)
    else:
        response = StreamingHttpResponse(upstream.iter_raw(), status=upstream.status_code)
        response._resource_closers.append(upstream.close)  # Django closes it when the response is done
    for name in FORWARDED_RESPONSE_HEADERS:
        if name in ("content-length", "etag") and not response.streaming:
            continue  # the page carries this session's token: no validator of Flower's bytes, Django sets the length
        if name in upstream.headers:
            response[name] = upstream.headers[name]
    if "location" in upstream.headers:
        response["Location"] = _rewrite_location(upstream.headers["location"])
    return response


def _with_csrf_token(request, upstream: httpx.Response) -> bytes:
    """Flower's page with the portal's CSRF token handed to its jQuery (pages are small: read whole)."""
    try:
        body = upstream.read()
    finally:
        upstream.close()
    head, found, tail = body.rpartition(b"</body>")
    if not found:
        return body
    return head + (CSRF_SNIPPET % get_token(request)).encode() + found + tail


def _query(data):
    for key, values in data.lists():
        for value in values:
            yield key, value
