"""Reads for exports: the changelist's queryset for a query string, and the rows query that gets written."""

from dataclasses import dataclass

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
    count: int


def export_selection(*, target: ExportTarget, user, query_string: str) -> ExportSelection:
    """Exactly the rows the model's admin changelist shows this user for this query string, in its order.

    The queryset is built by the registered ModelAdmin's own ChangeList, so its list filters, search,
    date hierarchy and ordering carry over unchanged. Bad parameters raise ValidationError.
    """
    model = target.model
    model_admin = admin.site._registry.get(model) or admin.ModelAdmin(model, admin.site)
    params = QueryDict(query_string, mutable=True)
    for key in _DISPLAY_PARAMS:
        params.pop(key, None)
    request = RequestFactory().get("/", data=params)
    request.user = user
    try:
        changelist = model_admin.get_changelist_instance(request)
    except (IncorrectLookupParameters, SuspiciousOperation, ValueError, ValidationError) as exc:
        raise ValidationError(_("These filters do not apply to %(data)s.") % {"data": target.label}) from exc
    queryset = changelist.queryset
    if not queryset.query.order_by:
        queryset = queryset.order_by("-pk")
    # An exact count: a changelist may show a capped or estimated one (see backoffice/results/admin.py).
    return ExportSelection(queryset=queryset, count=queryset.count())


def export_rows(*, target: ExportTarget, queryset: QuerySet, columns: list[str], file_format: str = CSV) -> QuerySet:
    """The rows query that gets written, every cell rendered by the database (see rendering.py).

    CSV: values_list() of the chosen columns, numbers as they are, everything else as its text. xlsx: one
    column per row, the row's cells as SpreadsheetML (the writer adds `<row r="n">`). Build it inside the
    job's language: choice labels are translated when the query is built."""
    render = rendering.xlsx_cell if file_format == XLSX else rendering.csv_cell
    cells = []
    for path in columns:
        cells.append(render(path, target.kind_of(target.column(path)), target.model_field(path)))
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
