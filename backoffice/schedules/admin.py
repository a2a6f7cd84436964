"""The schedules admin, replacing django-celery-beat's stock ModelAdmins on the same models."""

from celery import states
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from backoffice.auditing import audit_message
from backoffice.schedules import selectors, services
from backoffice.schedules.forms import PeriodicTaskForm
from backoffice.task_registry import parse_json_args, parse_json_kwargs

for model in (PeriodicTask, IntervalSchedule, CrontabSchedule, SolarSchedule, ClockedSchedule):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


def _local(value) -> str:
    """A time as staff read it: in TIME_ZONE (DST-aware), to the second (a 5-s schedule's next runs differ only
    there), with the zone's abbreviation."""
    if value is None:
        return "-"
    local = timezone.localtime(value)
    return f"{date_format(local, 'Y-m-d H:i:s')} {local.tzname()}"


def _result_link(result_id, status) -> str:
    if result_id is None:
        return "-"
    url = reverse("admin:django_celery_results_taskresult_change", args=[result_id])
    return format_html('<a href="{}">{}</a>', url, status)


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(admin.ModelAdmin):
    form = PeriodicTaskForm
    change_form_template = "admin/schedules/periodictask_change_form.html"
    list_display = ("name", "enabled", "task", "schedule", "next_run", "last_result", "last_run_at")
    list_filter = ("enabled", "one_off", "task")
    search_fields = ("name", "task", "description")
    list_select_related = ("interval", "crontab", "solar", "clocked")
    autocomplete_fields = ("crontab",)
    raw_id_fields = ("solar", "clocked")
    actions = ("enable_selected", "disable_selected", "run_selected")
    ordering = ("name",)
    status_fields = ("next_runs", "last_result", "result_counts", "history", "changes")

    def get_queryset(self, request):
        return selectors.with_last_result(super().get_queryset(request))

    def get_readonly_fields(self, request, obj=None):
        return self.status_fields if obj else ()

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (None, {"fields": ("name", "task", "description", "enabled")}),
            (
                _("Schedule (set exactly one)"),
                {"fields": (("every", "period"), "crontab", "solar", "clocked", "one_off")},
            ),
            (_("Arguments"), {"fields": ("args", "kwargs")}),
            (
                _("Execution"),
                {"fields": ("queue", "priority", "start_time", "expires", "expire_seconds"), "classes": ("collapse",)},
            ),
        ]
        if obj is not None:
            fieldsets.append((_("Status"), {"fields": self.status_fields}))
        return fieldsets

    # -- permissions ---------------------------------------------------------------------------------------

    def has_toggle_permission(self, request):
        return request.user.has_perm("portal_schedules.toggle_periodictask") or self.has_change_permission(request)

    def has_run_permission(self, request):
        return request.user.has_perm("portal_console.run_task")

    # -- list columns --------------------------------------------------------------------------------------

    @admin.display(description=_("schedule"))
    def schedule(self, obj):
        return str(obj.scheduler) if obj.scheduler else "-"

    @admin.display(description=_("next run"))
    def next_run(self, obj):
        runs = selectors.schedule_next_runs(periodic_task=obj, now=timezone.now(), count=1)
        return _local(runs[0]) if runs else "-"

    @admin.display(description=_("last result"))
    def last_result(self, obj):
        if not hasattr(obj, "last_result_id"):
            latest = selectors.schedule_last_result(name=obj.name)
            obj.last_result_id, obj.last_result_status = (latest.id, latest.status) if latest else (None, None)
        return _result_link(obj.last_result_id, obj.last_result_status)

    # -- status fields on the change page ------------------------------------------------------------------

    @admin.display(description=_("next five runs"))
    def next_runs(self, obj):
        runs = selectors.schedule_next_runs(periodic_task=obj, now=timezone.now())
        if not runs:
            return _("none (disabled or finished)")
        return format_html("<ol>{}</ol>", format_html_join("", "<li>{}</li>", ((_local(run),) for run in runs)))

    @admin.display(description=_("results in the last day"))
    def result_counts(self, obj):
        counts = selectors.schedule_result_counts(name=obj.name, since=selectors.day_ago(timezone.now()))
        return _("%(success)s succeeded, %(failure)s failed") % {
            "success": counts.get(states.SUCCESS, 0),
            "failure": counts.get(states.FAILURE, 0),
        }

    @admin.display(description=_("run history"))
    def history(self, obj):
        rows = selectors.schedule_history(name=obj.name)
        if not rows:
            return _("no runs stored yet")
        return format_html(
            "<table><tr><th>{}</th><th>{}</th><th>{}</th></tr>{}</table>",
            _("finished"),
            _("status"),
            _("worker"),
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                ((_local(row.date_done), _result_link(row.id, row.status), row.worker or "-") for row in rows),
            ),
        )

    @admin.display(description=_("changed by"))
    def changes(self, obj):
        entries = selectors.schedule_changes(periodic_task=obj)
        if not entries:
            return _("no changes recorded")
        return format_html(
            "<table>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                ((_local(e.action_time), e.user.get_username(), audit_message(e) or "-") for e in entries),
            ),
        )

    # -- bulk paths: every one tells beat (services call PeriodicTasks.update_changed) --------------------

    @admin.action(description=_("Enable selected schedules"), permissions=["toggle"])
    def enable_selected(self, request, queryset):
        count = services.periodic_tasks_set_enabled(
            user=request.user, ids=queryset.values_list("pk", flat=True), enabled=True
        )
        self.message_user(request, ngettext("%d schedule enabled.", "%d schedules enabled.", count) % count)

    @admin.action(description=_("Disable selected schedules"), permissions=["toggle"])
    def disable_selected(self, request, queryset):
        count = services.periodic_tasks_set_enabled(
            user=request.user, ids=queryset.values_list("pk", flat=True), enabled=False
        )
        self.message_user(request, ngettext("%d schedule disabled.", "%d schedules disabled.", count) % count)

    @admin.action(description=_("Run selected schedules now"), permissions=["run"])
    def run_selected(self, request, queryset):
        started = 0
        for task in queryset:
            if self._run_now(request, task) is not None:
                started += 1
        if started:
            self.message_user(request, ngettext("%d task started.", "%d tasks started.", started) % started)

    def delete_queryset(self, request, queryset):
        services.periodic_tasks_delete(ids=queryset.values_list("pk", flat=True))

    # -- run now -------------------------------------------------------------------------------------------

    def get_urls(self):
        run = self.admin_site.admin_view(require_POST(self.run_now_view))
        return [path("<path:object_id>/run/", run, name="django_celery_beat_periodictask_run")] + super().get_urls()

    def run_now_view(self, request, object_id):
        if not self.has_run_permission(request):
            raise PermissionDenied
        task = get_object_or_404(PeriodicTask, pk=object_id)
        run = self._run_now(request, task)
        if run is None:
            return redirect("admin:django_celery_beat_periodictask_change", task.pk)
        self.message_user(request, _("%(task)s started by you.") % {"task": task.task}, messages.SUCCESS)
        return redirect("console:run", task_id=run.task_id)

    def _run_now(self, request, task):
        from backoffice.console.models import TaskRun
        from backoffice.console.services import task_run

        try:
            return task_run(
                user=request.user,
                task_name=task.task,
                args=parse_json_args(task.args),
                kwargs=parse_json_kwargs(task.kwargs),
                source=TaskRun.Source.SCHEDULE,
                periodic_task_name=task.name,
            )
        except ValidationError as exc:
            self.message_user(request, f"{task.name}: {' '.join(exc.messages)}", messages.ERROR)
            return None

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["can_run"] = obj is not None and self.has_run_permission(request)
        return super().render_change_form(request, context, add, change, form_url, obj)


class _ScheduleAdmin(admin.ModelAdmin):
    """Picked from the schedule form by search (autocomplete), never from a select of every row."""


@admin.register(IntervalSchedule)
class IntervalScheduleAdmin(_ScheduleAdmin):
    list_display = ("__str__", "every", "period")
    search_fields = ("every", "period")


@admin.register(CrontabSchedule)
class CrontabScheduleAdmin(_ScheduleAdmin):
    """Every field is checked by django-celery-beat's crontab validators when the form is saved."""

    list_display = ("__str__", "human_readable", "timezone")
    fields = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week", "timezone")
    search_fields = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")


@admin.register(SolarSchedule)
class SolarScheduleAdmin(_ScheduleAdmin):
    list_display = ("__str__", "event", "latitude", "longitude")
    search_fields = ("event",)


@admin.register(ClockedSchedule)
class ClockedScheduleAdmin(_ScheduleAdmin):
    list_display = ("__str__", "clocked_time")
    search_fields = ("clocked_time",)
