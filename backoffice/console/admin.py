"""Task runs in the admin: who started which task, from where (read only), with a way into the console."""

from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from backoffice.admin_mixins import ReadOnlyAdminMixin
from backoffice.console.models import TaskRun


@admin.register(TaskRun)
class TaskRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    change_list_template = "admin/console/taskrun_change_list.html"
    list_display = ("created_at", "task_name", "started_by", "source", "not_before", "live_status")
    list_filter = ("source", "task_name")
    search_fields = ("=task_id", "task_name", "periodic_task_name")
    date_hierarchy = "created_at"
    list_select_related = ("started_by",)
    readonly_fields = (
        "task_id",
        "task_name",
        "args",
        "kwargs",
        "eta",
        "source",
        "periodic_task_name",
        "retry_of",
        "started_by",
        "created_at",
        "live_status",
    )

    @admin.display(description=_("not before"), ordering="eta")
    def not_before(self, obj):
        # To the second: a run due in 30 s shows when, not the same minute as the one before it.
        return "-" if obj.eta is None else date_format(timezone.localtime(obj.eta), "Y-m-d H:i:s")

    @admin.display(description=_("live status"))
    def live_status(self, obj):
        return format_html('<a href="{}">{}</a>', reverse("console:run", args=[obj.task_id]), _("follow"))
