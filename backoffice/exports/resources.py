"""A formula-safe base for django-import-export resources, and the export/import permission rule.

Small exports (a filtered changelist or selected rows) stay on django-import-export's admin flow; these make
that flow as safe as the background jobs: every text cell is neutralised against spreadsheet formulas (the
stock IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT is off by default and strips only a leading "="), numbers stay
numbers, and export and import each need their own permission.

Portal apps subclass FormulaSafeModelResource and mix ImportExportPermissionsMixin into their admin. The
ledger, orders and results admins get the same treatment from backoffice/exports/admin.py at start-up,
because points and orders never import the portal's pages.
"""

from functools import cache

from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse
from import_export import resources, widgets

from backoffice.exports.formulas import neutralise
from backoffice.exports.registry import is_importable, target_for_model


class FormulaSafeResourceMixin:
    """Neutralise every exported text cell; fields with a number widget are left alone."""

    def export_field(self, field, instance, **kwargs):
        # The stock cell (dehydrate_<field> methods and widgets included), not another mixin's already
        # neutralised one: the rule is applied exactly once, so reading back gives the original text.
        value = resources.Resource.export_field(self, field, instance, **kwargs)
        if isinstance(value, str) and not isinstance(field.widget, widgets.NumberWidget):
            return neutralise(value)
        return value


class FormulaSafeModelResource(FormulaSafeResourceMixin, resources.ModelResource):
    pass


@cache
def formula_safe(resource_class: type[resources.Resource]) -> type[resources.Resource]:
    """The resource class with formula-safe export (the class itself if it already is)."""
    if issubclass(resource_class, FormulaSafeResourceMixin):
        return resource_class
    return type(f"FormulaSafe{resource_class.__name__}", (FormulaSafeResourceMixin, resource_class), {})


def export_permission(model) -> str:
    """The export registry's permission for the model, else `<app_label>.export_<model_name>`."""
    target = target_for_model(model)
    if target is not None:
        return target.permission
    return f"{model._meta.app_label}.{get_permission_codename('export', model._meta)}"


def import_permission(model) -> str | None:
    """`<app_label>.import_<model_name>`, or None for history tables, which nobody may import into."""
    if not is_importable(model):
        return None
    return f"{model._meta.app_label}.{get_permission_codename('import', model._meta)}"


def export_hand_over(model_admin, request):
    """The changelist's stock Export button, for a model of the export registry: the portal's export page for
    the same rows (the changelist's filters and search ride along). One set of columns and one rendering
    whichever button was used, CSV or xlsx, and above EXPORTS_STREAM_MAX_ROWS only as a background job:
    the stock flow builds the whole file in the web worker, with no size cap."""
    if not model_admin.has_export_permission(request):
        raise PermissionDenied
    target = target_for_model(model_admin.model)
    url = reverse("exports:start", args=[target.key])
    query = request.GET.urlencode()
    return redirect(f"{url}?{query}" if query else url)


class ImportExportPermissionsMixin:
    """For ModelAdmins with django-import-export's mixins: formula-safe resources, own permissions, and the
    Export button of a registered export target handed over to the portal's export page."""

    def export_action(self, request):
        if target_for_model(self.model) is not None:
            return export_hand_over(self, request)
        return super().export_action(request)

    def has_export_permission(self, request):
        return request.user.has_perm(export_permission(self.model))

    def has_import_permission(self, request):
        permission = import_permission(self.model)
        return permission is not None and request.user.has_perm(permission)

    def get_export_resource_classes(self, request):
        return [formula_safe(cls) for cls in super().get_export_resource_classes(request)]
