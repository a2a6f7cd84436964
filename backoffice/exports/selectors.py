"""Reads for exports: the changelist's queryset for a query string, and the rows query that gets written."""

from dataclasses import dataclass
from functools import cached_property

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import SuspiciousOperation, ValidationError
from django.db.models import F, QuerySet, Value
from django.http import QueryDict
from django.test import RequestFactory
from django.utils.translation import gettext as _

from backoffice.exports import rendering
from backoffice.exports.registry import ExportTarget

CSV = "csv"
XLSX = "xlsx"
# Query string keys of the changelist that are about display, not about which rows are shown.
_DISPLAY_PARAMS = ("p", "all", "_changelist_filters")


@dataclass(frozen=True)
class ExportSelection:
    queryset: QuerySet

    @cached_property
    def count(self) -> int:
        """An exact count, taken once when asked: a changelist may show a capped or estimated one (see
        backoffice/results/admin.py), and building the selection counts nothing."""
        return self.queryset.count()


def _changelist_rows(model_admin: admin.ModelAdmin, request) -> QuerySet:
    """The rows the admin's ChangeList selects for this request, without fetching its page or running its
    COUNT queries (the export needs the queryset, not a page of it). Built as get_changelist_instance builds
    it, so list_display positions (the `o=` ordering parameter) mean the same."""
    list_display = model_admin.get_list_display(request)
    list_display_links = model_admin.get_list_display_links(request, list_display)
    if model_admin.get_actions(request):
        list_display = ["action_checkbox", *list_display]

    class SelectionOnly(model_admin.get_changelist(request)):
        def get_results(self, request):
            pass  # no page, no COUNT

    changelist = SelectionOnly(
        request,
        model_admin.model,
        list_display,
        list_display_links,
        model_admin.get_list_filter(request),
        model_admin.date_hierarchy,
        model_admin.get_search_fields(request),
        model_admin.get_list_select_related(request),
        model_admin.list_per_page,
        model_admin.list_max_show_all,
        model_admin.list_editable,
        model_admin,
        model_admin.get_sortable_by(request),
        model_admin.search_help_text,
    )
    return changelist.queryset


def export_selection(*, target: ExportTarget, user, query_string: str) -> ExportSelection:
    """Exactly the rows the model's admin changelist shows this user for this query string, in its order.

    The queryset is built by the registered ModelAdmin's own ChangeList, so its list filters, search,
    date hierarchy and ordering carry over unchanged. Bad parameters raise ValidationError.
    """
    model = target.model
    site = admin.site
    model_admin = site.get_model_admin(model) if site.is_registered(model) else admin.ModelAdmin(model, site)
    params = QueryDict(query_string, mutable=True)
    for key in _DISPLAY_PARAMS:
        params.pop(key, None)
    request = RequestFactory().get("/", data=params)
    request.user = user
    try:
        queryset = _changelist_rows(model_admin, request)
    except (IncorrectLookupParameters, SuspiciousOperation, ValueError, ValidationError) as exc:
        raise ValidationError(_("These filters do not apply to %(data)s.") % {"data": target.label}) from exc
    if not queryset.query.order_by:
        queryset = queryset.order_by("-pk")
    return ExportSelection(queryset=queryset)


def export_rows(*, target: ExportTarget, queryset: QuerySet, columns: list[str], file_format: str = CSV) -> QuerySet:
    """The rows query that gets written, every cell rendered by the database (see rendering.py).

    CSV: values_list() of the chosen columns, numbers as they are, everything else as its text. xlsx: one
    column per row, the row's cells as SpreadsheetML (the writer adds `<row r="n">`). Build it inside the
    job's language: choice labels are translated when the query is built."""
    render = rendering.xlsx_cell if file_format == XLSX else rendering.csv_cell
    cells = []
    for path in columns:
        field = target.model_field(path)
        cells.append(render(path, rendering.kind_of(field, target.column(path).kind), field))
    if file_format == XLSX:
        return queryset.annotate(export_row=rendering.Cat(*cells, Value("</row>"))).values_list("export_row")
    annotations, names = {}, []
    for index, (path, cell) in enumerate(zip(columns, cells, strict=True)):
        if isinstance(cell, F) and cell.name == path:  # a number as the database writes it
            names.append(path)
            continue
        annotations[f"export_c{index}"] = cell
        names.append(f"export_c{index}")
    return queryset.annotate(**annotations).values_list(*names)


# How a lookup reads next to its field's name on the job page.
_LOOKUP_WORDS = {
    "exact": "=",
    "iexact": "=",
    "gte": "≥",
    "gt": ">",
    "lte": "≤",
    "lt": "<",
    "contains": "contains",
    "icontains": "contains",
    "in": "in",
    "isnull": "is empty",
    "year": "year",
    "month": "month",
    "day": "day",
}


def filter_labels(*, target: ExportTarget, query_string: str) -> list[str]:
    """The filters of a changelist query string as the person chose them: field names, not lookups, and
    choices and related rows by their names (`kind = award`, `user = alice (#12)`, `search: alice`)."""
    from django.apps import apps

    model = apps.get_model(target.model_label)
    labels = []
    for key, values in QueryDict(query_string).lists():
        if key in _DISPLAY_PARAMS or key == "o":
            continue
        value = ", ".join(values)
        if key == "q":
            labels.append(_("search: %(value)s") % {"value": value})
            continue
        labels.append(_field_label(model, key, value))
    return labels


def _field_label(model, key: str, value: str) -> str:
    parts, names, field = key.split("__"), [], None
    current = model
    for part in parts:
        if field is not None and field.is_relation and part in ("id", "pk"):
            parts = parts[1:]  # `user__id__exact`: the related row itself, named below
            continue
        try:
            field = current._meta.get_field(part)
        except Exception:  # noqa: BLE001 - a lookup (gte, year) or a name the model does not have
            break
        names.append(str(getattr(field, "verbose_name", part)))
        current = field.related_model or current
        parts = parts[1:]
    lookup = parts[0] if parts else "exact"
    if field is None or not names:
        return f"{key} = {value}"
    shown = value
    if getattr(field, "choices", None) and lookup in ("exact", "iexact"):
        shown = str(dict(field.flatchoices).get(value, value))
    elif field.is_relation and lookup in ("exact", "id", "in") and value.isdigit():
        related = field.related_model.objects.filter(pk=value).first()
        shown = f"{related} (#{value})" if related is not None else f"#{value}"
    elif lookup == "isnull":
        return f"{' › '.join(names)}: {_('empty') if value in ('1', 'True', 'true') else _('not empty')}"
    word = _LOOKUP_WORDS.get(lookup, lookup)
    return f"{' › '.join(names)} {word} {shown}"
