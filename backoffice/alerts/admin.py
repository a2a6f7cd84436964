"""Alert rules (edited by Ops, silenced through their own page), and the read-only history of alerts and of
every message sent about them."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from backoffice.alerts.forms import SilenceForm
from backoffice.alerts.models import AlertEvent, AlertNotification, AlertRule
from backoffice.alerts.services import alert_rule_silence, alert_rule_unsilence

SILENCE_PERMISSION = "portal_alerts.silence_alertrule"


class _HistoryAdmin(admin.ModelAdmin):
    """History is written by the evaluation only: no add, change or delete here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


STATE_FIELDS = (
    "state",
    "firing_since",
    "last_value",
    "last_evaluated_at",
    "last_notified_at",
    "silenced_until",
    "silenced_by",
    "silence_reason",
    "silence_link",
)


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "threshold", "is_enabled", "state", "last_value", "silenced_until")
    list_filter = ("kind", "is_enabled")
    search_fields = ("name", "task_name")
    readonly_fields = STATE_FIELDS
    fieldsets = (
        (None, {"fields": ("name", "kind", "is_enabled", "threshold", "window_seconds")}),
        (_("Scope"), {"fields": ("task_name", "queue", "min_finished")}),
        (_("Whom to tell"), {"fields": ("email_to", "webhook_url", "webhook_format", "sms_to", "reminders_per_hour")}),
        (_("State"), {"fields": STATE_FIELDS}),
    )
    actions = ["lift_silence"]

    @admin.display(description=_("state"))
    def state(self, rule: AlertRule) -> str:
        if rule.is_silenced():
            return _("silenced") + (" / " + _("firing") if rule.firing_since else "")
        return _("firing") if rule.firing_since else _("ok")

    @admin.display(description=_("silence"))
    def silence_link(self, rule: AlertRule) -> str:
        if not rule.pk:
            return "-"
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:portal_alerts_alertrule_silence", args=[rule.pk]),
            _("Silence this rule"),
        )

    def get_urls(self):
        silence = self.admin_site.admin_view(self.silence_view)
        return [path("<int:object_id>/silence/", silence, name="portal_alerts_alertrule_silence")] + super().get_urls()

    def silence_view(self, request, object_id):
        if not request.user.has_perm(SILENCE_PERMISSION):
            raise PermissionDenied
        rule = get_object_or_404(AlertRule, pk=object_id)
        form = SilenceForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                until = alert_rule_silence(
                    rule=rule,
                    user=request.user,
                    minutes=form.cleaned_data["minutes"],
                    reason=form.cleaned_data["reason"],
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                self.message_user(
                    request,
                    _("%(rule)s is silenced until %(until)s.") % {"rule": rule, "until": until},
                    messages.SUCCESS,
                )
                return redirect("admin:portal_alerts_alertrule_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": _("Silence %(rule)s") % {"rule": rule},
            "opts": self.model._meta,
            "original": rule,
            "form": form,
        }
        return TemplateResponse(request, "alerts/silence.html", context, status=400 if form.errors else 200)

    @admin.action(description=_("Lift the silence of the selected rules"), permissions=["silence"])
    def lift_silence(self, request, queryset):
        rules = list(queryset.filter(silenced_until__isnull=False))
        for rule in rules:
            alert_rule_unsilence(rule=rule, user=request.user)
        self.message_user(
            request,
            ngettext("%d rule is no longer silenced.", "%d rules are no longer silenced.", len(rules)) % len(rules),
        )

    def has_silence_permission(self, request):
        return request.user.has_perm(SILENCE_PERMISSION)


class AlertNotificationInline(admin.TabularInline):
    model = AlertNotification
    fields = ("created_at", "reason", "channel", "shown_recipient", "status", "sent_at", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=_("recipient"))
    def shown_recipient(self, notification: AlertNotification) -> str:
        return _shown_recipient(notification)


def _shown_recipient(notification: AlertNotification) -> str:
    return notification.shown_recipient


@admin.register(AlertEvent)
class AlertEventAdmin(_HistoryAdmin):
    list_display = ("rule", "fired_at", "resolved_at", "value", "peak_value", "threshold", "notified")
    list_filter = ("rule",)
    date_hierarchy = "fired_at"
    inlines = [AlertNotificationInline]
    readonly_fields = ("rule", "fired_at", "resolved_at", "value", "peak_value", "threshold")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("rule").prefetch_related("notifications")

    @admin.display(description=_("notified"))
    def notified(self, event: AlertEvent) -> str:
        return ", ".join(sorted({_shown_recipient(n) for n in event.notifications.all()})) or "-"


@admin.register(AlertNotification)
class AlertNotificationAdmin(_HistoryAdmin):
    list_display = ("created_at", "event", "reason", "channel", "shown_recipient", "status", "sent_at")
    list_filter = ("status", "channel", "reason")
    readonly_fields = (
        "event",
        "reason",
        "channel",
        "shown_recipient",
        "subject",
        "body",
        "status",
        "error",
        "created_at",
        "sent_at",
    )
    fields = readonly_fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("event__rule")

    @admin.display(description=_("recipient"))
    def shown_recipient(self, notification: AlertNotification) -> str:
        return _shown_recipient(notification)
