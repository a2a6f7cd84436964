"""Reads of the admin log (django.contrib.admin's LogEntry), where every staff action is recorded: admin edits,
and the console runs, exports, balance adjustments and worker control actions their owners log there."""

from datetime import datetime, time, timedelta

from django.contrib.admin.models import LogEntry
from django.db.models import Q, QuerySet
from django.utils import timezone


def audit_entries(
    *, user=None, action: int | None = None, content_type=None, since=None, until=None, q: str = ""
) -> QuerySet[LogEntry]:
    entries = LogEntry.objects.select_related("user", "content_type").order_by("-action_time", "-id")
    if user is not None:
        entries = entries.filter(user=user)
    if action is not None:
        entries = entries.filter(action_flag=action)
    if content_type is not None:
        entries = entries.filter(content_type=content_type)
    zone = timezone.get_current_timezone()
    if since:
        entries = entries.filter(action_time__gte=timezone.make_aware(datetime.combine(since, time.min), zone))
    if until:
        end = timezone.make_aware(datetime.combine(until + timedelta(days=1), time.min), zone)
        entries = entries.filter(action_time__lt=end)
    if q:
        entries = entries.filter(Q(object_repr__icontains=q) | Q(change_message__icontains=q))
    return entries
