"""The default alert rules, installed by `setup_portal` when missing (created by name, never overwritten).

They have no recipients: staff add an address, a webhook or a phone number to the rules they want to hear
from. Until then a default still fires, shows on the dashboard and is kept in the alert history.
"""

from backoffice.alerts.models import AlertRule

Kind = AlertRule.Kind

DEFAULT_RULES: list[dict] = [
    {"name": "Task failures", "kind": Kind.TASK_FAILURES, "threshold": 10, "window_seconds": 300},
    {
        "name": "Task failure rate",
        "kind": Kind.TASK_FAILURE_RATE,
        "threshold": 0.2,
        "window_seconds": 900,
        "min_finished": 20,
    },
    {"name": "Queue length", "kind": Kind.QUEUE_LENGTH, "threshold": 1000},
    {"name": "Points outbox backlog", "kind": Kind.OUTBOX_BACKLOG, "threshold": 1000},
    {"name": "Points outbox oldest event", "kind": Kind.OUTBOX_OLDEST_AGE, "threshold": 300},
    {"name": "Beat heartbeat", "kind": Kind.BEAT_HEARTBEAT_AGE, "threshold": 120},
    {"name": "No worker online", "kind": Kind.NO_WORKER, "threshold": 1},
    {
        "name": "Overdue unpaid orders",
        "kind": Kind.OVERDUE_ORDERS,
        "threshold": 1,
        "window_seconds": 600,  # the expiry sweeper runs every minute: ten minutes late means it is stuck
    },
    {"name": "Orders flagged for refund", "kind": Kind.REFUND_FLAGGED, "threshold": 1},
    {"name": "Failed export jobs", "kind": Kind.FAILED_EXPORTS, "threshold": 1, "window_seconds": 3600},
]
