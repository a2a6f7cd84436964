"""The task registry shared by the task console, the schedules admin and the results admin.

Which Celery tasks exist, which of them staff may run or schedule, which queues a worker consumes, and
whether JSON arguments bind to a task's signature.

A task is offered to staff only when its own declaration says so, beside the task:

    @shared_task(name="orders.expire_overdue", staff_runnable=True)

(Celery sets decorator options it does not know as attributes of the task class.) Every other task is
internal: notification senders (they would send any SMS or email "from the company"), per-object helpers
that other code publishes with ids it checked (`orders.expire`, `exports.notify_ready`, ...) and Celery's
own `celery.*` tasks. Internal tasks are never offered and are refused by name, in the console, in a
schedule and on a retry.
"""

import functools
import inspect
import json

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from backoffice.celery import app as celery_app

STAFF_RUNNABLE = "staff_runnable"  # the task option that opens a task to the console and to schedules
CELERY_TASK_PREFIX = "celery."  # Celery's own chord/group helpers


@functools.cache
def _import_task_modules() -> None:
    """Register every installed app's tasks, once per process (Celery's Django fixup also runs the model
    checks on each import_default_modules call: ~50 ms that a page must not pay every time)."""
    celery_app.loader.import_default_modules()


def all_tasks() -> dict:
    """Every task the workers know, by name, internal ones included (results are stored for those too),
    without Celery's own."""
    _import_task_modules()
    return {name: task for name, task in sorted(celery_app.tasks.items()) if not name.startswith(CELERY_TASK_PREFIX)}


def is_staff_runnable(task) -> bool:
    return getattr(task, STAFF_RUNNABLE, False) is True


def staff_tasks() -> dict:
    """The tasks staff may run from the console and put on a schedule, by name."""
    return {name: task for name, task in all_tasks().items() if is_staff_runnable(task)}


def staff_task(task_name: str):
    """The task staff asked for; ValidationError if it is unknown or internal."""
    task = all_tasks().get(task_name)
    if task is None:
        raise ValidationError(_("%(task)s is not a registered task."), params={"task": task_name}, code="unknown")
    if not is_staff_runnable(task):
        raise ValidationError(
            _("%(task)s is an internal task: staff can neither run nor schedule it."),
            params={"task": task_name},
            code="internal",
        )
    return task


def task_signature(task) -> inspect.Signature:
    """The signature callers see: `self` of a bound task is already bound, so it does not show."""
    return inspect.signature(task.run)


def task_queue(task_name: str) -> str:
    """The queue the task goes to when no queue is given (the routes in settings)."""
    return celery_app.amqp.router.route({}, task_name)["queue"].name


def worker_queues() -> list[str]:
    """The queues a worker of this deployment consumes (settings.WORKER_QUEUES)."""
    return list(settings.WORKER_QUEUES)


def validate_queue(queue: str | None) -> None:
    """A message sent to a queue no worker consumes waits in the broker forever: refuse such a queue."""
    if queue and queue not in settings.WORKER_QUEUES:
        raise ValidationError(
            _("No worker of this deployment consumes the queue “%(queue)s”; choose one of: %(queues)s."),
            params={"queue": queue, "queues": ", ".join(settings.WORKER_QUEUES)},
            code="queue",
        )


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
    """Raise ValidationError unless staff may run `task_name` and (args, kwargs) bind to its signature.

    The message names the argument that is missing or unexpected (Python's own wording from
    Signature.bind, e.g. "missing a required argument: 'order_id'").
    """
    signature = task_signature(staff_task(task_name))
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise ValidationError(
            _("The arguments do not fit %(task)s%(signature)s: %(error)s."),
            params={"task": task_name, "signature": signature, "error": exc},
            code="signature",
        ) from None
