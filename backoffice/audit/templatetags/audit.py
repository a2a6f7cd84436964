from django import template

from backoffice.auditing import audit_message as render

register = template.Library()


@register.filter
def audit_message(entry) -> str:
    """An admin-log entry's message in the reader's language."""
    return render(entry)
