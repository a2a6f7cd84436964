"""Publishing a Celery task: the one home for it, with one failure policy.

- Publish after the commit (`task_publish_on_commit`), never inside a transaction: a worker must never see work
  whose record could still roll back.
- A failed publish never raises into the caller: the caller's transaction has committed, so a 500 now would
  tell the client that nothing happened when something did. It logs one warning line (the task's name and id,
  never its arguments, which can hold personal data) and reports `sent=False`, so nobody answers "sent" when
  nothing was queued.
- Every caller keeps its own durable record of the work (an outbox row, a pending or paid order, a queued export
  job), and a sweeper on the beat schedule publishes again what was left behind: a lost publish costs a delay,
  never the work. `on_failure` is where a caller marks its record for that sweeper.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction

logger = logging.getLogger(__name__)


@dataclass
class Publication:
    """The outcome of one publish: `sent` is None until the commit ran it, then True or False."""

    task_name: str
    sent: bool | None = None


def task_publish(task, *, args=None, kwargs=None, **options) -> bool:
    """Publish now; True when the broker took the message. On any failure: one warning line, False."""
    if args is not None:
        options["args"] = args
    if kwargs is not None:
        options["kwargs"] = kwargs
    try:
        task.apply_async(**options)
    except Exception as exc:  # noqa: BLE001 - whatever stopped the hand-over, nothing was queued
        logger.warning(
            "%s%s not queued (%s: %s)",
            task.name,
            f" {options['task_id']}" if options.get("task_id") else "",
            type(exc).__name__,
            exc,
        )
        return False
    return True


def task_publish_on_commit(
    task, *, args=None, kwargs=None, on_failure: Callable[[], None] | None = None, **options
) -> Publication:
    """Publish once the current transaction commits (at once outside a transaction), as `task_publish` does.

    `on_failure` runs (after the commit) when the broker did not take the message.
    """
    publication = Publication(task_name=task.name)

    def publish() -> None:
        publication.sent = task_publish(task, args=args, kwargs=kwargs, **options)
        if not publication.sent and on_failure is not None:
            on_failure()

    transaction.on_commit(publish, robust=True)  # robust: an on_failure that raises is logged, not a 500
    return publication
