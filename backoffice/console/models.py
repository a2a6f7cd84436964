from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class TaskRun(models.Model):
    """A task started by a person: from the console, a schedule's "run now", or a retry of a stored result."""

    class Source(models.TextChoices):
        CONSOLE = "console", _("Task console")
        SCHEDULE = "schedule", _("Schedule run now")
        RETRY = "retry", _("Retry of a stored result")

    task_id = models.CharField(_("task id"), max_length=255, unique=True)
    task_name = models.CharField(_("task name"), max_length=255, db_index=True)
    args = models.JSONField(_("positional arguments"), default=list, blank=True)
    kwargs = models.JSONField(_("keyword arguments"), default=dict, blank=True)
    eta = models.DateTimeField(_("not before"), null=True, blank=True)
    source = models.CharField(_("started from"), max_length=16, choices=Source.choices)
    periodic_task_name = models.CharField(_("schedule"), max_length=255, null=True, blank=True)
    retry_of = models.CharField(_("retry of task id"), max_length=255, null=True, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("started by"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("started at"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("task run")
        verbose_name_plural = _("task runs")
        ordering = ["-created_at", "-id"]
        default_permissions = ("view",)  # history: nobody adds, edits or deletes a run by hand
        permissions = [
            ("run_task", _("Can run tasks (console and schedule run now)")),
            ("revoke_task", _("Can revoke and terminate tasks")),
            ("retry_task", _("Can retry failed tasks with the same arguments")),
        ]

    def __str__(self):
        return f"{self.task_name} [{self.task_id}]"
