"""The export jobs list (who ran what, filters, rows, size, duration), and the rules (button, permissions,
formula-safe resources) that exportable models' admins apply through ExportAdminMixin."""

from django.contrib import admin
from django.template.defaultfilters import filesizeformat
from django.template.loader import select_template
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from backoffice.exports.models import ExportJob
from backoffice.exports.registry import get_target, is_importable, target_for_model
from backoffice.exports.resources import export_hand_over, export_permission, formula_safe
from backoffice.exports.selectors import filter_labels


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "data",
        "mode",
        "created_by",
        "status",
        "rows",
        "size",
        "duration",
        "filters",
        "created_at",
        "job_page",
    )
    list_filter = ("status", "target", "mode", "created_at")
    search_fields = ("created_by__username", "query_string")
    list_select_related = ("created_by",)
    date_hierarchy = "created_at"
    change_list_template = "exports/jobs_change_list.html"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.has_perm("portal_exports.download_any_exportjob"):
            return queryset
        return queryset.filter(created_by=request.user)

    def has_add_permission(self, request):
        return False  # jobs are started from a changelist, through the export service

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # files expire through exports.expire; the record stays as the audit trail

    @admin.display(description=_("rows"))
    def rows(self, job):
        if job.rows_total is None:
            return job.rows_written
        return f"{job.rows_written:,} / {job.rows_total:,}"

    @admin.display(description=_("size"))
    def size(self, job):
        return filesizeformat(job.size_bytes) if job.size_bytes else "-"

    @admin.display(description=_("duration"))
    def duration(self, job):
        seconds = job.duration_seconds
        return "-" if seconds is None else f"{seconds:.1f} s"

    @admin.display(description=_("data"), ordering="target")
    def data(self, job):
        try:
            return get_target(job.target).label
        except LookupError:
            return job.target  # a target removed since the job ran

    @admin.display(description=_("filters"))
    def filters(self, job):
        if not job.query_string:
            return "-"
        try:
            return "; ".join(filter_labels(target=get_target(job.target), query_string=job.query_string))
        except LookupError:
            return job.query_string

    @admin.display(description=_("job"))
    def job_page(self, job):
        if job.mode != ExportJob.Mode.JOB:
            return "-"
        return format_html('<a href="{}">{}</a>', reverse("exports:job", args=[job.pk]), _("open"))


class ExportRules:
    """The export rules that every ExportAdminMixin admin applies (declared as EXPORTER in exports' portal.py).

    The owning apps (points, orders, results) never import the portal's export pages: their admins inherit the
    shared ExportAdminMixin (backoffice.extension_point), which asks these rules. Their changelists offer
    "Export in background" (our template wraps theirs and adds the button); their stock exports write through
    formula-safe resources and need the target's export permission on top of the admin's own checks; history
    tables (NEVER_IMPORTABLE) refuse import to everyone.
    """

    def changelist_response(self, model_admin, request, response):
        """The changelist wrapped in ours, which adds the button and extends the admin's own template."""
        if target_for_model(model_admin.model) is None or not isinstance(response, TemplateResponse):
            return response
        base = response.template_name
        response.template_name = "exports/change_list.html"
        response.context_data["exports_base_change_list_template"] = (
            base if isinstance(base, str) else select_template(base)
        )
        return response

    def may_export(self, model_admin, request) -> bool:
        target = target_for_model(model_admin.model)
        return target is None or request.user.has_perm(export_permission(model_admin.model))

    def may_import(self, model_admin, request) -> bool:
        return is_importable(model_admin.model)  # never for history tables (NEVER_IMPORTABLE)

    def export_resource_classes(self, model_admin, resource_classes) -> list:
        return [formula_safe(cls) for cls in resource_classes]

    def export_action(self, model_admin, request, *, stock):
        """The stock Export button's view: for an export target, the portal's export page for the same rows
        (resources.export_hand_over: one set of columns and one rendering, CSV or xlsx, and a background job
        above EXPORTS_STREAM_MAX_ROWS); for other models, django-import-export's own (`stock(request)`)."""
        if target_for_model(model_admin.model) is not None:
            return export_hand_over(model_admin, request)
        return stock(request)


export_rules = ExportRules()
