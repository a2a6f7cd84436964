"""Checks shared by the schedules admin, the task console and retries: is this a registered task, and do
these JSON arguments bind to its signature?"""

import functools
import inspect
import json

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from backoffice.celery import app as celery_app

INTERNAL_TASK_PREFIX = "celery."  # Celery's own chord/group helpers: not something staff should run


@functools.cache
def _import_task_modules() -> None:
    """Register every installed app's tasks, once per process (Celery's Django fixup also runs the model
    checks on each import_default_modules call: ~50 ms that a page must not pay every time)."""
    celery_app.loader.import_default_modules()


def registered_tasks() -> dict:
    """Every task the workers know, by name, without Celery's internal ones."""
    _import_task_modules()
    return {name: task for name, task in sorted(celery_app.tasks.items()) if not name.startswith(INTERNAL_TASK_PREFIX)}


def task_signature(task) -> inspect.Signature:
    """The signature callers see: `self` of a bound task is already bound, so it does not show."""
    return inspect.signature(task.run)


def parse_json_args(raw: str | None) -> list:
    try:
        value = json.loads(raw or "[]")
    except ValueError as exc:
        raise ValidationError(_("Positional arguments are not valid JSON: %(error)s"), params={"error": exc}) from None
    if not isinstance(value, list):
        raise ValidationError(_('Positional arguments must be a JSON list, e.g. [1, "a"].'))
    return value


def parse_json_kwargs(raw: str | None) -> dict:
    try:
        value = json.loads(raw or "{}")
    except ValueError as exc:
        raise ValidationError(_("Keyword arguments are not valid JSON: %(error)s"), params={"error": exc}) from None
    if not isinstance(value, dict):
        raise ValidationError(_('Keyword arguments must be a JSON object, e.g. {"days": 7}.'))
    return value


def validate_task_call(task_name: str, args: list, kwargs: dict) -> None:
    """Raise ValidationError unless `task_name` is registered and (args, kwargs) bind to its signature.

    The message names the argument that is missing or unexpected (Python's own wording from
    Signature.bind, e.g. "missing a required argument: 'order_id'").
    """
    task = registered_tasks().get(task_name)
    if task is None:
        raise ValidationError(_("%(task)s is not a registered task."), params={"task": task_name}, code="unknown")
    signature = task_signature(task)
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise ValidationError(
            _("The arguments do not fit %(task)s%(signature)s: %(error)s."),
            params={"task": task_name, "signature": signature, "error": exc},
            code="signature",
        ) from None
