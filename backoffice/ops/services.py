"""State changes for operations: refreshing the dashboard's figures, and audited worker control."""

import logging
import time
from datetime import datetime

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from backoffice.auditing import audit_record
from backoffice.celery import app as celery_app
from backoffice.errors import AppError
from backoffice.extension_point import collect
from backoffice.ops.models import DashboardPanel, Worker

logger = logging.getLogger(__name__)

CONTROL_REPLY_TIMEOUT_S = 2.0  # how long a control action waits for the worker's reply
# The refresh task runs every minute, a little early or late: a panel whose figures are this close to its
# refresh interval is due now rather than a whole minute later.
REFRESH_SLACK_SECONDS = 15


def dashboard_refresh(
    *, now: datetime | None = None, panels: list[str] | None = None, due_only: bool = False
) -> dict[str, str]:
    """Recompute the declared panels (or the named ones) and store them. A panel whose source is down keeps its
    last figures (and their age). `due_only`: skip panels refreshed more recently than their refresh interval.

    Returns each panel's outcome: "ok", "absent" (its app has no models yet) or the error text.
    """
    now = now or timezone.now()
    declared = {panel.key: panel for panel in collect().panels if panel.compute}
    keys = panels or list(declared)
    if due_only:
        keys = _due(declared, keys, now)
    outcome = {}
    for key in keys:
        started = time.perf_counter()
        try:
            data = declared[key].computed(now=now)
        except Exception as exc:  # noqa: BLE001 - one dead source (Redis, a worker) must not stop the rest
            logger.warning("dashboard panel %s not refreshed: %s", key, exc)
            outcome[key] = f"error: {exc}"
            continue
        if data is None:
            outcome[key] = "absent"
            continue
        with transaction.atomic():
            DashboardPanel.objects.update_or_create(
                key=key,
                defaults={
                    "data": data,
                    "refreshed_at": now,
                    "duration_ms": int((time.perf_counter() - started) * 1000),
                },
            )
        outcome[key] = "ok"
    return outcome


def _due(declared: dict, keys: list[str], now: datetime) -> list[str]:
    refreshed = dict(DashboardPanel.objects.filter(key__in=keys).values_list("key", "refreshed_at"))
    return [
        key
        for key in keys
        if key not in refreshed
        or (now - refreshed[key]).total_seconds() + REFRESH_SLACK_SECONDS >= declared[key].refresh_seconds
    ]


class ControlError(AppError):
    """A control action that could not be carried out; the message is shown to the user."""

    def __init__(self, message):
        super().__init__("control_failed", message)


CONTROL_ACTIONS = ("pool_grow", "pool_shrink", "shutdown", "revoke", "rate_limit")


def worker_control(
    *, user, action: str, worker: str, task_id: str = "", task_name: str = "", rate: str = "", terminate: bool = False
) -> str:
    """Run one control action against a worker through Celery's control API and log it in the admin log.

    Returns the worker's reply text. Raises ControlError when the action is unknown or nobody answered.
    """
    if action not in CONTROL_ACTIONS:
        raise ControlError(_("Unknown action %(action)s.") % {"action": action})
    destination = [worker] if worker else None
    control = celery_app.control
    kwargs = {"destination": destination, "reply": True, "timeout": CONTROL_REPLY_TIMEOUT_S}
    if action == "pool_grow":
        replies, summary = control.pool_grow(1, **kwargs), f"pool grow by 1 on {worker}"
    elif action == "pool_shrink":
        replies, summary = control.pool_shrink(1, **kwargs), f"pool shrink by 1 on {worker}"
    elif action == "shutdown":
        if not worker:
            raise ControlError(_("A shutdown needs one worker."))
        replies, summary = control.shutdown(**kwargs), f"shutdown of {worker}"
    elif action == "revoke":
        if not task_id:
            raise ControlError(_("Revoking needs a task id."))
        replies = control.revoke(task_id, terminate=terminate, **kwargs)
        summary = f"revoke {task_id}{' (terminate)' if terminate else ''}"
    else:
        if not task_name or not rate:
            raise ControlError(_("A rate limit needs a task name and a rate such as 10/m."))
        replies = control.rate_limit(task_name, rate, **kwargs)
        summary = f"rate limit {task_name} = {rate}"
    if not replies and action != "shutdown":
        raise ControlError(_("No worker answered: %(summary)s") % {"summary": summary})
    reply_text = (
        "; ".join(
            f"{name}: {body.get('ok') or body.get('error')}" for reply in replies or [] for name, body in reply.items()
        )
        or "sent"
    )
    audit_record(
        actor=user,
        target=(
            ContentType.objects.get_for_model(Worker, for_concrete_model=False),
            worker or "*",
            worker or "all workers",
        ),
        message=gettext_noop("%(action)s: %(replies)s"),
        params={"action": summary, "replies": reply_text[:1800]},
    )
    return reply_text
