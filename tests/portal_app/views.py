from django.contrib import admin
from django.template.response import TemplateResponse

from tests.portal_app.models import Note


def report(request):
    """Guarded by its page declaration in portal.py."""
    context = {**admin.site.each_context(request), "title": "Notes report", "notes": Note.objects.count()}
    return TemplateResponse(request, "portal_app/report.html", context)
