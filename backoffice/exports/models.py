"""Export jobs: one row per background (or streamed) export, CSV or xlsx, its progress, its file and its expiry."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ExportJob(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")
        EXPIRED = "expired", _("Expired")

    class Mode(models.TextChoices):
        JOB = "job", _("Background job")
        STREAM = "stream", _("Streamed download")

    class Format(models.TextChoices):
        CSV = "csv", _("CSV")
        XLSX = "xlsx", _("Excel (.xlsx)")

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)
    CONTENT_TYPES = {
        Format.CSV: "text/csv; charset=utf-8",
        Format.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }

    target = models.CharField(_("data"), max_length=40, help_text=_("Key of the export registry entry."))
    mode = models.CharField(_("mode"), max_length=10, choices=Mode.choices, default=Mode.JOB)
    file_format = models.CharField(_("format"), max_length=8, choices=Format.choices, default=Format.CSV)
    columns = models.JSONField(_("columns"), default=list)
    query_string = models.TextField(_("filters"), blank=True, help_text=_("The changelist's query string."))
    include_bom = models.BooleanField(_("UTF-8 BOM for Excel"), default=False)
    notify_by_email = models.BooleanField(_("email when ready"), default=False)
    language = models.CharField(_("language"), max_length=16, default="en")
    link = models.URLField(_("job page link"), max_length=500, blank=True)

    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.QUEUED)
    rows_total = models.BigIntegerField(_("rows to export"), null=True, blank=True)
    rows_written = models.BigIntegerField(_("rows written"), default=0)
    size_bytes = models.BigIntegerField(_("size (bytes)"), default=0)
    file_name = models.CharField(_("file"), max_length=200, blank=True, help_text=_("Inside EXPORTS_ROOT."))
    error = models.TextField(_("error"), blank=True)
    task_id = models.CharField(_("task id"), max_length=255, blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="export_jobs", verbose_name=_("run by")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True, db_index=True)

    class Meta:
        verbose_name = _("export job")
        verbose_name_plural = _("export jobs")
        ordering = ["-created_at", "-id"]
        default_permissions = ("view",)  # created by the export service, never edited; files expire by schedule
        permissions = [
            ("export_ledger", _("Can export the points ledger")),
            ("export_orders", _("Can export orders")),
            ("export_results", _("Can export task results")),
            ("download_any_exportjob", _("Can see and download every user's export files")),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rows_written__gte=0) & models.Q(size_bytes__gte=0),
                name="exportjob_counts_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.target} #{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    @property
    def download_name(self) -> str:
        stamp = (self.started_at or self.created_at).strftime("%Y%m%d-%H%M%S")
        return f"{self.target}-{stamp}-{self.pk}.{self.file_format}"

    @property
    def content_type(self) -> str:
        return self.CONTENT_TYPES[self.file_format]
