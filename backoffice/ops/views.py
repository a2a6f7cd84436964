"""Ops pages: Flower through the portal, the native workers page with its control actions, and the
permission check nginx asks before it lets a request through to Flower (deploy/nginx.conf)."""

from csp.decorators import csp_replace
from django.contrib import admin, messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from backoffice.accounts.decorators import staff_permission_required
from backoffice.ops import flower, selectors
from backoffice.ops.forms import ControlForm
from backoffice.ops.services import ControlError, worker_control

VIEW = "portal_ops.view_ops"
CONTROL = "portal_ops.control_workers"


@csrf_exempt  # the proxy runs the CSRF check itself, accepting the token in Flower's header (flower._check_csrf)
@csp_replace(flower.CONTENT_SECURITY_POLICY)  # Flower's pages, framed by the portal's own Flower page
@xframe_options_sameorigin  # framed by the portal's own Flower page; every other page stays DENY
@staff_permission_required(VIEW)
def flower_proxy(request, path: str = ""):
    response = flower.proxy(request, path)
    response["Cache-Control"] = "no-store"  # Flower's pages and API hold task arguments: never kept by a cache
    return response


def flower_page(request):
    """Flower framed inside an admin page, so the portal's navigation stays around it (guarded by its page
    declaration in portal.py, which also makes it uncached)."""
    context = {**admin.site.each_context(request), "title": _("Flower"), "flower_src": "/ops/flower/"}
    return TemplateResponse(request, "ops/flower_page.html", context)


@never_cache
def flower_auth(request):
    """nginx `auth_request` target: 204 lets the request through to Flower, 401/403 refuse it."""
    user = request.user
    if not user.is_authenticated:
        return HttpResponse(status=401)
    allowed = user.is_active and user.is_staff and user.has_perm(VIEW)
    if request.headers.get("X-Original-Method", "GET").upper() not in flower.READ_METHODS:
        allowed = False  # control goes through the portal's audited actions, never straight to Flower
    return HttpResponse(status=204 if allowed else 403)


@require_http_methods(["GET", "POST"])
def workers(request):
    """Workers, their queues, pool, active and reserved tasks, straight from Celery's inspect API.

    Guarded by its page declaration in portal.py (VIEW); controlling needs CONTROL on top."""
    can_control = request.user.has_perm(CONTROL)
    form = ControlForm()
    if request.method == "POST":
        if not can_control:
            return HttpResponse(_("You may watch workers but not control them."), status=403)
        form = ControlForm(request.POST)
        if form.is_valid():
            try:
                reply = worker_control(user=request.user, **form.cleaned_data)
            except ControlError as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, _("Done: %(reply)s") % {"reply": reply})
                return redirect("ops:workers")
    try:
        found, error = selectors.workers_inspect(), ""
    except Exception as exc:  # noqa: BLE001 - the broker being down is a message on this page, not a 500
        found, error = [], str(exc)
    try:
        queues = selectors.queue_lengths()
    except Exception:  # noqa: BLE001
        queues = []
    context = {
        **admin.site.each_context(request),
        "title": _("Workers"),
        "workers": found,
        "queues": queues,
        "error": error,
        "can_control": can_control,
        "form": form,
    }
    return TemplateResponse(request, "ops/workers.html", context, status=400 if form.errors else 200)
