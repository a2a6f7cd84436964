"""Report emails in the admin: the reports (with "send me a preview now" and a link to each one's schedule) and
their deliveries (history: read-only, failed copies visible)."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from backoffice.reports import services
from backoffice.reports.models import Report, ReportDelivery


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    change_form_template = "admin/reports/report_change_form.html"
    list_display = ("name", "kind", "schedule", "subscriber_count")
    list_filter = ("kind",)
    search_fields = ("name",)
    filter_horizontal = ("subscribers", "groups")
    readonly_fields = ("periodic_task", "created_at")
    actions = ("subscribe_me", "unsubscribe_me")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("periodic_task")

    @admin.display(description=_("schedule"))
    def schedule(self, obj):
        task = obj.periodic_task
        if task is None:
            return "—"
        state = _("enabled") if task.enabled else _("disabled")
        return format_html("{} ({})", task.crontab or task.interval or "", state)

    @admin.display(description=_("subscribers"))
    def subscriber_count(self, obj):
        return obj.subscribers.count()

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        services.report_schedule_ensure(report=form.instance)  # a new report gets its schedule with it

    def delete_model(self, request, obj):
        services.report_delete(report=obj)

    def delete_queryset(self, request, queryset):
        for report in queryset:
            services.report_delete(report=report)

    @admin.action(description=_("Subscribe me to the selected reports"), permissions=["view"])
    def subscribe_me(self, request, queryset):
        count = services.report_subscribe(reports=list(queryset), user=request.user, subscribed=True)
        self.message_user(request, ngettext("Subscribed to %d report.", "Subscribed to %d reports.", count) % count)

    @admin.action(description=_("Unsubscribe me from the selected reports"), permissions=["view"])
    def unsubscribe_me(self, request, queryset):
        count = services.report_subscribe(reports=list(queryset), user=request.user, subscribed=False)
        self.message_user(
            request, ngettext("Unsubscribed from %d report.", "Unsubscribed from %d reports.", count) % count
        )

    # -- send me a preview now -----------------------------------------------------------------------------

    def get_urls(self):
        preview = self.admin_site.admin_view(require_POST(self.preview_view))
        return [path("<path:object_id>/preview/", preview, name="portal_reports_report_preview")] + super().get_urls()

    def preview_view(self, request, object_id):
        if not self.has_view_permission(request):
            raise PermissionDenied
        report = get_object_or_404(Report, pk=object_id)
        try:
            services.report_preview_queue(report=report, user=request.user)
        except ValueError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(
                request,
                _("A preview of “%(report)s” is on its way to %(email)s.")
                % {"report": report.name, "email": request.user.email},
                messages.SUCCESS,
            )
        return redirect("admin:portal_reports_report_change", report.pk)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["can_edit_schedule"] = request.user.has_perm("django_celery_beat.change_periodictask")
        return super().render_change_form(request, context, add, change, form_url, obj)


@admin.register(ReportDelivery)
class ReportDeliveryAdmin(admin.ModelAdmin):
    list_display = ("report", "period_start", "recipient", "status", "attempts", "sent_at", "error")
    list_filter = ("status", "report")
    date_hierarchy = "period_start"
    list_select_related = ("report", "recipient")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
