"""Who may do what with periodic schedules (django-celery-beat's models and ours).

Operators edit schedules; Ops may only enable and disable them; Analysts read.
"""

from backoffice.accounts.roles import ANALYSTS, OPERATORS, OPS

_SCHEDULE_MODELS = ("intervalschedule", "crontabschedule", "clockedschedule", "solarschedule")

ROLE_PERMISSIONS = {
    OPERATORS: [
        *(f"django_celery_beat.{verb}_periodictask" for verb in ("view", "add", "change", "delete")),
        *(f"django_celery_beat.{verb}_{model}" for verb in ("view", "add", "change") for model in _SCHEDULE_MODELS),
        "portal_schedules.toggle_periodictask",
    ],
    ANALYSTS: ["django_celery_beat.view_periodictask"],
    OPS: ["django_celery_beat.view_periodictask", "portal_schedules.toggle_periodictask"],
}
