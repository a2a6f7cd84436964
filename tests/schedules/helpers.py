"""Shared by the schedules, results and console tests: schedules and admin form data."""

import json
from datetime import timedelta

from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask


def interval(seconds: int) -> IntervalSchedule:
    return IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)[0]


def make_schedule(name="ping every hour", *, every=3600, task="backoffice.ping", kwargs=None, ran_ago=0, **fields):
    """An enabled interval schedule that last ran `ran_ago` seconds ago (so not due for a while by default)."""
    return PeriodicTask.objects.create(
        name=name,
        task=task,
        interval=interval(every),
        kwargs=json.dumps(kwargs or {}),
        last_run_at=timezone.now() - timedelta(seconds=ran_ago),
        **fields,
    )


def form_data(task: PeriodicTask, **changes) -> dict:
    """The schedule admin's change form as the browser would post it, with `changes` applied."""
    data = {
        "name": task.name,
        "task": task.task,
        "description": task.description,
        "enabled": "on" if task.enabled else "",
        "interval": task.interval_id or "",
        "every": task.interval.every if task.interval_id else "",
        "period": task.interval.period if task.interval_id else "",
        "crontab": task.crontab_id or "",
        "solar": task.solar_id or "",
        "clocked": task.clocked_id or "",
        "one_off": "on" if task.one_off else "",
        "args": task.args,
        "kwargs": task.kwargs,
        "queue": task.queue or "",
        "priority": task.priority if task.priority is not None else "",
        "start_time_0": "",
        "start_time_1": "",
        "expires_0": "",
        "expires_1": "",
        "expire_seconds": "",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value != "" or key in ("args", "kwargs")}
