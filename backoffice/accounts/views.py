"""The portal's 403 page: inside the admin's frame (header, navigation) with a way back, not Django's bare
"403 Forbidden". Under /api/ the answer stays JSON, as every API error is."""

from django.contrib import admin
from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _


def permission_denied(request, exception=None):
    message = str(exception or "") or _("Your account does not have the permission this page needs.")
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=403)
    referer = request.headers.get("referer", "")
    back = referer if referer and url_has_allowed_host_and_scheme(referer, {request.get_host()}) else ""
    context = {
        **admin.site.each_context(request),
        "title": _("Permission denied"),
        "message": message,
        "back_url": back if back != request.build_absolute_uri() else "",
    }
    return TemplateResponse(request, "403.html", context, status=403)
