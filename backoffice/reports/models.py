"""Report emails: what is sent to whom for which period, and one delivery row per (report, period, recipient)."""

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_celery_beat.models import PeriodicTask


class Report(models.Model):
    """A daily or weekly digest, sent by its own schedule (a PeriodicTask created with it) to its subscribers."""

    class Kind(models.TextChoices):
        DAILY = "daily", _("daily (yesterday)")
        WEEKLY = "weekly", _("weekly (last week, Monday to Sunday)")

    name = models.CharField(_("name"), max_length=100, unique=True)
    kind = models.CharField(_("period"), max_length=10, choices=Kind.choices, default=Kind.DAILY)
    subscribers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="+", verbose_name=_("subscribed staff")
    )
    groups = models.ManyToManyField(Group, blank=True, related_name="+", verbose_name=_("subscribed groups"))
    periodic_task = models.OneToOneField(
        PeriodicTask,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("schedule"),
        help_text=_("Time of day, weekday and enabled are edited on the schedule, like any other schedule."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("report email")
        verbose_name_plural = _("report emails")
        ordering = ["name"]
        permissions = [("view_revenue", _("Can read revenue figures in report emails"))]

    def __str__(self) -> str:
        return self.name


class ReportDelivery(models.Model):
    """One recipient's copy of one report for one period, claimed (inserted) before the email is sent.

    The unique constraint is the idempotency: a retried task or a second worker finds the row and sends nothing;
    only a copy whose send failed may be claimed again, by one conditional update.
    """

    class Status(models.TextChoices):
        SENDING = "sending", _("sending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("report"))
    period_start = models.DateField(_("period start"))
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("recipient")
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.SENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=1)
    error = models.CharField(_("last error"), max_length=500, blank=True)
    claimed_at = models.DateTimeField(_("claimed at"))
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("report delivery")
        verbose_name_plural = _("report deliveries")
        ordering = ["-period_start", "report", "recipient"]
        default_permissions = ("view",)  # history, written only by the send service
        constraints = [
            models.UniqueConstraint(
                fields=["report", "period_start", "recipient"], name="portal_reports_one_delivery_per_period"
            )
        ]
        indexes = [models.Index(fields=["status", "claimed_at"], name="portal_reports_delivery_status")]

    def __str__(self) -> str:
        return f"{self.report} {self.period_start} → {self.recipient}"
