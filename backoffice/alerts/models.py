"""Alert rules (what to watch, whom to tell), the history of each firing, and every message sent about it.

A rule's state lives on the rule (`firing_since`, `last_notified_at`) and moves only through the conditional
updates in backoffice.alerts.services, so two evaluations that overlap never send a message twice.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, URLValidator, validate_email
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from backoffice.notify.redaction import mask_phone
from backoffice.notify.services import SmsCodeError, phone_normalise


class AlertRule(models.Model):
    class Kind(models.TextChoices):
        TASK_FAILURES = "task_failures", _("task failures (count in the window)")
        TASK_FAILURE_RATE = "task_failure_rate", _("task failure rate (share of finished tasks in the window)")
        QUEUE_LENGTH = "queue_length", _("queue length")
        OUTBOX_BACKLOG = "outbox_backlog", _("points outbox backlog (events)")
        OUTBOX_OLDEST_AGE = "outbox_oldest_age", _("points outbox oldest event age (seconds)")
        BEAT_HEARTBEAT_AGE = "beat_heartbeat_age", _("beat heartbeat age (seconds)")
        NO_WORKER = "no_worker", _("no worker online")
        OVERDUE_ORDERS = "overdue_orders", _("unpaid orders past their deadline, not yet expired")
        REFUND_FLAGGED = "refund_flagged", _("orders flagged for refund")
        FAILED_EXPORTS = "failed_exports", _("failed export jobs in the window")

    class WebhookFormat(models.TextChoices):
        JSON = "json", _("JSON")
        SLACK = "slack", _("Slack-compatible")

    name = models.CharField(_("name"), max_length=120, unique=True)
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    task_name = models.CharField(
        _("task name"), max_length=255, blank=True, help_text=_("Task failures only; empty means every task.")
    )
    queue = models.CharField(_("queue"), max_length=100, blank=True, help_text=_("Queue length only; empty: all."))
    threshold = models.FloatField(
        _("fires at"),
        validators=[MinValueValidator(0)],
        help_text=_("The rule fires while the measured value is at least this (a rate: 0.5 means 50%)."),
    )
    window_seconds = models.PositiveIntegerField(
        _("window (seconds)"),
        default=300,
        validators=[MinValueValidator(1)],
        help_text=_("How far back task failures and failed exports count; how late an unpaid order must be."),
    )
    min_finished = models.PositiveIntegerField(
        _("minimum finished tasks"), default=10, help_text=_("Failure rate only: fewer finished tasks never fire.")
    )
    reminders_per_hour = models.PositiveSmallIntegerField(
        _("reminders per hour"), default=1, help_text=_("At most this many reminders an hour while it fires; 0: none.")
    )
    email_to = models.TextField(_("email recipients"), blank=True, help_text=_("Addresses, comma-separated."))
    webhook_url = models.URLField(_("webhook URL"), blank=True, validators=[URLValidator(schemes=["http", "https"])])
    webhook_format = models.CharField(
        _("webhook body"), max_length=8, choices=WebhookFormat.choices, default=WebhookFormat.JSON
    )
    sms_to = models.TextField(_("SMS recipients"), blank=True, help_text=_("Phone numbers, comma-separated."))
    is_enabled = models.BooleanField(_("enabled"), default=True)

    silenced_until = models.DateTimeField(_("silenced until"), null=True, blank=True, editable=False)
    silenced_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        verbose_name=_("silenced by"),
    )
    silence_reason = models.CharField(_("silence reason"), max_length=500, blank=True, editable=False)

    firing_since = models.DateTimeField(_("firing since"), null=True, blank=True, editable=False)
    last_value = models.FloatField(_("last value"), null=True, blank=True, editable=False)
    last_evaluated_at = models.DateTimeField(_("last evaluated"), null=True, blank=True, editable=False)
    last_notified_at = models.DateTimeField(_("last notified"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("alert rule")
        verbose_name_plural = _("alert rules")
        ordering = ["name"]
        permissions = [("silence_alertrule", _("Can silence an alert rule"))]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        for address in self.email_recipients:
            try:
                validate_email(address)
            except ValidationError:
                errors["email_to"] = _("%(address)s is not an email address.") % {"address": address}
        try:
            self.sms_recipients  # noqa: B018 - normalising is the check
        except SmsCodeError as exc:
            errors["sms_to"] = exc.message
        if self.kind == self.Kind.TASK_FAILURE_RATE and self.threshold > 1:
            errors["threshold"] = _("A rate is between 0 and 1.")
        if errors:
            raise ValidationError(errors)

    @property
    def email_recipients(self) -> list[str]:
        return [part.strip() for part in self.email_to.split(",") if part.strip()]

    @property
    def sms_recipients(self) -> list[str]:
        return [phone_normalise(part) for part in self.sms_to.split(",") if part.strip()]

    def is_silenced(self, now=None) -> bool:
        return bool(self.silenced_until and self.silenced_until > (now or timezone.now()))

    is_silenced.boolean = True


class AlertEvent(models.Model):
    """One firing of a rule, from the evaluation that saw it start to the one that saw it end."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="events", verbose_name=_("rule"))
    fired_at = models.DateTimeField(_("fired"), db_index=True)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    value = models.FloatField(_("value when fired"))
    peak_value = models.FloatField(_("peak value"))
    threshold = models.FloatField(_("threshold"))

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alert history")
        ordering = ["-fired_at", "-id"]
        default_permissions = ("view",)  # history: written by the evaluation only
        constraints = [
            # At most one open firing per rule, whatever races.
            models.UniqueConstraint(
                fields=["rule"], condition=models.Q(resolved_at__isnull=True), name="alerts_one_open_event_per_rule"
            )
        ]

    def __str__(self) -> str:
        return f"{self.rule} @ {self.fired_at:%Y-%m-%d %H:%M:%S}"


class AlertNotification(models.Model):
    """One message about an alert on one channel to one recipient. The delivery task gets only this row's id,
    so no recipient or message body ever sits in task arguments, results or Flower."""

    class Reason(models.TextChoices):
        FIRING = "firing", _("firing")
        REMINDER = "reminder", _("reminder")
        RESOLVED = "resolved", _("resolved")

    class Channel(models.TextChoices):
        EMAIL = "email", _("email")
        WEBHOOK = "webhook", _("webhook")
        SMS = "sms", _("SMS")

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")

    event = models.ForeignKey(
        AlertEvent, on_delete=models.CASCADE, related_name="notifications", verbose_name=_("alert")
    )
    reason = models.CharField(_("reason"), max_length=10, choices=Reason.choices)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    recipient = models.CharField(_("recipient"), max_length=500)
    subject = models.CharField(_("subject"), max_length=300)
    body = models.TextField(_("body"))  # plain text, or the webhook's JSON
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    published_at = models.DateTimeField(_("last published"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("alert notification")
        verbose_name_plural = _("alert notifications")
        ordering = ["-created_at", "-id"]
        default_permissions = ("view",)
        indexes = [models.Index(fields=["status", "created_at"], name="alerts_notification_status")]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} / {self.get_channel_display()} / {self.shown_recipient}"

    @property
    def shown_recipient(self) -> str:
        """Phone numbers are personal data: shown masked, as everywhere the portal shows them."""
        return mask_phone(self.recipient) if self.channel == self.Channel.SMS else self.recipient
