"""State changes for periodic schedules (django-celery-beat's tables)."""

import json

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask, PeriodicTasks

from backoffice.auditing import audit_record
from backoffice.celery import app as celery_app
from backoffice.schedules.defaults import DEFAULT_SCHEDULES, DefaultSchedule


def interval_schedule_for(*, every: int, period: str) -> IntervalSchedule:
    """The interval row for `every period`: intervals are values shared by every schedule that runs that often,
    so one schedule's form picks (or adds) a row and never edits the row others use."""
    interval, _created = IntervalSchedule.objects.get_or_create(every=every, period=period)
    return interval


def _schedule_for(default: DefaultSchedule) -> dict:
    if default.every_seconds:
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=default.every_seconds, period=IntervalSchedule.SECONDS
        )
        return {"interval": interval}
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=default.crontab.get("minute", "*"),
        hour=default.crontab.get("hour", "*"),
        day_of_week=default.crontab.get("day_of_week", "*"),
        day_of_month=default.crontab.get("day_of_month", "*"),
        month_of_year=default.crontab.get("month_of_year", "*"),
        timezone="UTC",
    )
    return {"crontab": crontab}


@transaction.atomic
def schedules_install_defaults(*, defaults: list[DefaultSchedule] | None = None) -> dict[str, list[str]]:
    """Create each missing default schedule by name; never touch one that exists."""
    celery_app.loader.import_default_modules()  # registers every app's tasks
    report: dict[str, list[str]] = {"created": [], "kept": [], "skipped": []}
    for default in DEFAULT_SCHEDULES if defaults is None else defaults:
        if PeriodicTask.objects.filter(name=default.name).exists():
            report["kept"].append(default.name)
            continue
        if default.task not in celery_app.tasks:
            report["skipped"].append(default.name)
            continue
        PeriodicTask.objects.create(
            name=default.name,
            task=default.task,
            description=default.description,
            kwargs=json.dumps(default.kwargs),
            queue=default.queue,
            **_schedule_for(default),
        )
        report["created"].append(default.name)
    if report["created"]:
        PeriodicTasks.update_changed()
    return report


@transaction.atomic
def periodic_tasks_set_enabled(*, user, ids, enabled: bool) -> int:
    """Enable or disable schedules in one UPDATE, log who did it per schedule, and tell beat.

    `queryset.update()` fires no signal, so beat would not notice without `update_changed()`.
    """
    tasks = PeriodicTask.objects.filter(pk__in=list(ids)).exclude(enabled=enabled)
    changed = list(tasks.values_list("pk", flat=True))
    if not changed:
        return 0
    fields = {"enabled": enabled, "date_changed": timezone.now()}  # update() skips auto_now; beat reads it
    if not enabled:
        fields["last_run_at"] = None  # as PeriodicTask.save() does: a re-enabled schedule starts afresh
    PeriodicTask.objects.filter(pk__in=changed).update(**fields)
    PeriodicTasks.update_changed()
    audit_record(
        actor=user,
        objects=PeriodicTask.objects.filter(pk__in=changed),
        message=gettext_noop("Enabled.") if enabled else gettext_noop("Disabled."),
    )
    return len(changed)


@transaction.atomic
def periodic_tasks_delete(*, ids) -> int:
    """Delete schedules and tell beat once (the admin logs deletions itself, before calling this)."""
    deleted, _by_model = PeriodicTask.objects.filter(pk__in=list(ids)).delete()
    PeriodicTasks.update_changed()
    return deleted
