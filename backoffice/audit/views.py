from django.contrib import admin
from django.core.paginator import Paginator
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from backoffice.audit.forms import AuditFilterForm
from backoffice.audit.selectors import audit_entries

PAGE_SIZE = 50


@require_GET
def audit_index(request):
    """Who did what, when: the admin log with filters. Guarded by its page declaration in portal.py."""
    form = AuditFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_bound and form.is_valid() else {}
    entries = audit_entries(**{key: value for key, value in filters.items() if value not in (None, "")})
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        **admin.site.each_context(request),
        "title": _("Audit log"),
        "form": form,
        "page": page,
        "query": query.urlencode(),
    }
    return TemplateResponse(request, "audit/index.html", context, status=400 if form.errors else 200)
