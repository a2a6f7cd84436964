from django import template
from django.urls import reverse

from backoffice.exports.registry import target_for_model

register = template.Library()


@register.simple_tag(takes_context=True)
def background_export_url(context, cl) -> str:
    """The start page of a background export of this changelist's rows, or "" when the user may not."""
    request = context.get("request")
    target = target_for_model(cl.model)
    if request is None or target is None or not target.is_available or not request.user.has_perm(target.permission):
        return ""
    query = request.GET.urlencode()
    url = reverse("exports:start", args=[target.key])
    return f"{url}?{query}" if query else url
