"""The portal's default periodic schedules, installed by `setup_portal` when missing.

Staff own them once installed: a default is created by name if absent and never overwritten or deleted,
so edits made in the admin survive every deploy (unlike beat's settings-based CELERY_BEAT_SCHEDULE, which
is upserted at every beat start). A default whose task is not registered yet is skipped, not installed
broken; it is installed on the next run once its app provides the task.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DefaultSchedule:
    name: str
    task: str
    description: str
    every_seconds: int | None = None
    crontab: dict = field(default_factory=dict)  # minute, hour, day_of_week, day_of_month, month_of_year
    kwargs: dict = field(default_factory=dict)
    queue: str | None = None


DEFAULT_SCHEDULES = [
    DefaultSchedule(
        name="Task results clean-up",
        task="results.cleanup",
        description="Deletes stored task results past their retention, in batches.",
        crontab={"minute": "17", "hour": "3"},
    ),
    DefaultSchedule(
        name="Dashboard refresh",
        task="ops.dashboard_refresh",
        description="Recomputes the dashboard's cached figures; the admin index reads only these.",
        every_seconds=60,
    ),
    DefaultSchedule(
        name="Order expiry sweeper",
        task="orders.expire_overdue",
        description="Expires unpaid orders past their deadline in batches, giving back seats, coupons and points.",
        every_seconds=60,
    ),
    DefaultSchedule(
        name="Order fulfilment sweeper",
        task="orders.fulfil_overdue",
        description="Fulfils paid orders whose fulfilment task was lost (for example while the broker was down).",
        every_seconds=60,
    ),
    DefaultSchedule(
        name="Points outbox relay",
        task="points.outbox_relay",
        description="Publishes batch tasks for captured points events whose own wake-up was lost (broker down).",
        every_seconds=5,
    ),
    DefaultSchedule(
        name="Points balance reconciliation",
        task="points.check_balances",
        description="Checks every points account against its ledger and logs any mismatch (repair: "
        "manage.py points_check_balances --fix).",
        crontab={"minute": "41", "hour": "2"},
    ),
    DefaultSchedule(
        name="Export jobs requeue",
        task="exports.requeue",
        description="Publishes again the export jobs left queued because the broker did not take their run.",
        every_seconds=60,
    ),
    DefaultSchedule(
        name="Export files expiry",
        task="exports.expire",
        description="Deletes export files past EXPORTS_EXPIRE_HOURS and marks their jobs expired.",
        crontab={"minute": "7"},  # hourly: a file outlives its expiry by an hour at most
    ),
    DefaultSchedule(
        name="Alerts evaluation",
        task="alerts.evaluate",
        description="Evaluates every enabled alert rule and sends what fires, reminds or recovers.",
        every_seconds=30,
    ),
]
