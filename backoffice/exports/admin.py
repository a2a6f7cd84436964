"""The export jobs list (who ran what, filters, rows, size, duration) and the changelist button."""

import types

from django.contrib import admin
from django.template.defaultfilters import filesizeformat
from django.template.loader import select_template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from backoffice.exports.models import ExportJob
from backoffice.exports.registry import NEVER_IMPORTABLE, available_targets
from backoffice.exports.resources import export_hand_over, export_permission, formula_safe


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "target",
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

    @admin.display(description=_("filters"))
    def filters(self, job):
        return job.query_string or "-"

    @admin.display(description=_("job"))
    def job_page(self, job):
        if job.mode != ExportJob.Mode.JOB:
            return "-"
        return format_html('<a href="{}">{}</a>', reverse("exports:job", args=[job.pk]), _("open"))


def install_background_export_buttons(site=None) -> list[str]:
    """Give the changelists of exportable models an "Export in background" button, in place.

    The owning apps (points, orders, results) never import the portal's export pages; the export registry
    names their models, and this wraps their registered changelist template with ours, which adds the button
    and extends theirs. Returns the registry keys that got the button.
    """
    site = site or admin.site
    installed = []
    for target in available_targets():
        model_admin = site._registry.get(target.model)
        if model_admin is None or getattr(model_admin, "exports_base_change_list_template", None):
            continue
        opts = target.model._meta
        base = (
            model_admin.change_list_template
            or select_template(
                [
                    f"admin/{opts.app_label}/{opts.model_name}/change_list.html",
                    f"admin/{opts.app_label}/change_list.html",
                    "admin/change_list.html",
                ]
            ).template.name
        )
        model_admin.exports_base_change_list_template = base
        model_admin.change_list_template = "exports/change_list.html"
        installed.append(target.key)
    return installed


def install_import_export_guards(site=None) -> list[str]:
    """Apply the export rules to the django-import-export admins of registered and history models, in place.

    Their owning apps never import the portal, so the registry's rules are applied here, on the registered
    ModelAdmin instances: every stock export writes through a formula-safe resource, a registered model's
    also needs the registry's export permission (on top of the admin's own checks) and its Export button
    hands over to the portal's export page (resources.export_hand_over); history tables
    (NEVER_IMPORTABLE) refuse
    import to everyone. Returns the labels of the models guarded.
    """
    site = site or admin.site
    guarded = []
    for model, model_admin in site._registry.items():
        if getattr(model_admin, "exports_guarded", False):
            continue
        label = model._meta.label
        is_exportable = any(target.model_label == label for target in available_targets())
        changed = False
        if is_exportable and hasattr(model_admin, "has_export_permission"):
            permission = export_permission(model)
            own_rule = model_admin.has_export_permission  # the owning app's checks stay; ours is added
            model_admin.has_export_permission = lambda request, permission=permission, own=own_rule: (
                request.user.has_perm(permission) and own(request)
            )
            if hasattr(model_admin, "export_action"):
                model_admin.export_action = types.MethodType(export_hand_over, model_admin)
            changed = True
        if hasattr(model_admin, "get_export_resource_classes"):  # every stock export is formula-safe
            stock_classes = model_admin.get_export_resource_classes
            model_admin.get_export_resource_classes = lambda request, stock=stock_classes: [
                formula_safe(cls) for cls in stock(request)
            ]
            changed = True
        if label in NEVER_IMPORTABLE and hasattr(model_admin, "has_import_permission"):
            model_admin.has_import_permission = lambda request: False
            changed = True
        if changed:
            model_admin.exports_guarded = True
            guarded.append(label)
    return guarded
