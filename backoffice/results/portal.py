"""What task results add to the portal (collected by backoffice.extension_point): task results as an export
target. The results changelist itself is the ModelAdmin in admin.py."""

from django.utils.translation import gettext_lazy as _

from backoffice.extension_point import IDENTIFIER, Column, ExportTarget

# The task results export: its columns, in file order (the exports app writes them).
EXPORTS = [
    ExportTarget(
        key="results",
        label=_("Task results"),
        model_label="django_celery_results.TaskResult",
        permission="portal_exports.export_results",
        columns=(
            Column("id", _("ID")),
            Column("task_id", _("Task ID"), IDENTIFIER),
            Column("task_name", _("Task name")),
            Column("periodic_task_name", _("Periodic task")),
            Column("status", _("Status")),
            Column("worker", _("Worker")),
            Column("date_created", _("Created")),
            Column("date_started", _("Started")),
            Column("date_done", _("Finished")),
            Column("task_args", _("Arguments")),
            Column("task_kwargs", _("Keyword arguments")),
            Column("result", _("Result")),
            Column("traceback", _("Traceback")),
        ),
        default_columns=("id", "task_id", "task_name", "status", "worker", "date_created", "date_done", "result"),
    ),
]
