"""State changes for tasks run by hand: start one (console, schedule "run now", retry), revoke one.

Every run is recorded as a TaskRun (who, what, when) and in the admin log, which the audit view reads.
"""

import ast
import json
import uuid
from datetime import datetime, timedelta

from celery import states
from django.conf import settings
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django_celery_results.models import TaskResult
from kombu.exceptions import KombuError, OperationalError

from backoffice.auditing import audit_record
from backoffice.celery import app as celery_app
from backoffice.console.models import TaskRun
from backoffice.publishing import task_publish_on_commit
from backoffice.task_registry import staff_task, validate_queue, validate_task_call

ETA_PAST_TOLERANCE = timedelta(minutes=1)  # a form filled a moment ago still means "now"
RETRYABLE_STATES = states.PROPAGATE_STATES  # failed or revoked: what an operator may submit again


def _check_eta(eta: datetime, now: datetime) -> None:
    if eta < now - ETA_PAST_TOLERANCE:
        raise ValidationError(_("The start time is in the past."), code="eta_past")
    limit = timedelta(seconds=settings.CELERY_VISIBILITY_TIMEOUT)
    if eta - now > limit:
        # Redis would deliver the message again after the visibility timeout: the task would run twice.
        raise ValidationError(
            _("The start time must be within %(hours)s hours (the broker's visibility timeout)."),
            params={"hours": f"{limit.total_seconds() / 3600:g}"},
            code="eta_too_far",
        )


def task_run(
    *,
    user,
    task_name: str,
    args: list | None = None,
    kwargs: dict | None = None,
    countdown: float | None = None,
    eta: datetime | None = None,
    queue: str | None = None,
    source: str = TaskRun.Source.CONSOLE,
    periodic_task_name: str | None = None,
    retry_of: str | None = None,
    now: datetime | None = None,
) -> TaskRun:
    """Validate, record who started what, then publish. Raises ValidationError on bad input or broker."""
    args, kwargs = list(args or []), dict(kwargs or {})
    validate_task_call(task_name, args, kwargs)
    validate_queue(queue)
    now = now or timezone.now()
    if countdown is not None:
        if countdown < 0:
            raise ValidationError(_("The countdown cannot be negative."), code="countdown")
        eta = now + timedelta(seconds=countdown)
    if eta is not None:
        _check_eta(eta, now)
    headers = {"periodic_task_name": periodic_task_name} if periodic_task_name else {}
    task_id = str(uuid.uuid4())
    with transaction.atomic():
        run = TaskRun.objects.create(
            task_id=task_id,
            task_name=task_name,
            args=args,
            kwargs=kwargs,
            eta=eta,
            source=source,
            periodic_task_name=periodic_task_name,
            retry_of=retry_of,
            started_by=user,
            created_at=now,
        )
        audit_record(
            actor=user,
            objects=[run],
            action=ADDITION,
            message=gettext_noop("Ran %(task)s") if eta is None else gettext_noop("Scheduled %(task)s for %(eta)s"),
            params={"task": task_name, **({"eta": eta.isoformat()} if eta is not None else {})},
        )
        # Published after the commit: a worker never sees a task whose record could still roll back.
        publication = task_publish_on_commit(
            staff_task(task_name),
            args=args,
            kwargs=kwargs,
            task_id=task_id,
            eta=eta,
            headers=headers,
            **({"queue": queue} if queue else {}),
            on_failure=lambda: _run_forget(task_id=task_id),
        )
    if publication.sent is False:
        raise ValidationError(_("The broker did not accept the task; nothing was started."), code="broker")
    return run


def _run_forget(*, task_id: str) -> None:
    """A run the broker refused never started: nothing for a sweeper (a task run by hand is the operator's to
    start again, and the form says so), so its record and its "Ran" line go."""
    with transaction.atomic():
        for run in TaskRun.objects.filter(task_id=task_id):
            LogEntry.objects.filter(
                content_type=ContentType.objects.get_for_model(TaskRun), object_id=str(run.pk)
            ).delete()
            run.delete()


def _log_on_task(*, user, task_id: str, message: str) -> None:
    """On the portal's record of the task; a task id it has no record of is audited all the same."""
    known = TaskRun.objects.filter(task_id=task_id).first() or TaskResult.objects.filter(task_id=task_id).first()
    unknown = (ContentType.objects.get_for_model(TaskRun), task_id, _("unknown task [%(id)s]") % {"id": task_id})
    audit_record(
        actor=user,
        objects=[known] if known is not None else (),
        target=None if known is not None else unknown,
        message=message,
        params={"id": task_id},
    )


@transaction.atomic
def task_revoke(*, user, task_id: str, terminate: bool = False) -> None:
    """Revoke a waiting task; with terminate, also kill it if a worker is running it (prefork pool)."""
    try:
        celery_app.control.revoke(task_id, terminate=terminate, signal="SIGTERM")
    except (KombuError, OperationalError, OSError) as exc:
        raise ValidationError(
            _("The broker did not accept the revoke: %(error)s"), params={"error": exc}, code="broker"
        ) from None
    message = gettext_noop("Terminated task %(id)s") if terminate else gettext_noop("Revoked task %(id)s")
    _log_on_task(user=user, task_id=task_id, message=message)


def _stored_arguments(raw: str | None, kind: type):
    """result_extended stores arguments as the JSON of their Python repr: "\\"('a', 1)\\""."""
    if raw in (None, ""):
        return kind()
    value = json.loads(raw)
    if isinstance(value, str):
        value = ast.literal_eval(value)  # literals only: never evaluates code
    if kind is list and isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, kind):
        raise ValueError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def task_retry(*, user, task_result: TaskResult) -> TaskRun:
    """Submit a failed (or revoked) task again with the same arguments, as a new task."""
    if task_result.status not in RETRYABLE_STATES:
        raise ValidationError(
            _("Only failed or revoked tasks can be retried; this one is %(status)s."),
            params={"status": task_result.status},
            code="state",
        )
    try:
        args = _stored_arguments(task_result.task_args, list)
        kwargs = _stored_arguments(task_result.task_kwargs, dict)
    except (ValueError, SyntaxError) as exc:
        raise ValidationError(
            _("The stored arguments cannot be read back: %(error)s"), params={"error": exc}, code="args"
        ) from None
    return task_run(
        user=user,
        task_name=task_result.task_name,
        args=args,
        kwargs=kwargs,
        source=TaskRun.Source.RETRY,
        periodic_task_name=task_result.periodic_task_name,
        retry_of=task_result.task_id,
    )
