"""Reads for exports: the changelist's queryset for a query string, and the rows query that gets written."""

from dataclasses import dataclass

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import SuspiciousOperation, ValidationError
from django.db.models import QuerySet
from django.http import QueryDict
from django.test import RequestFactory
from django.utils.translation import gettext as _

from backoffice.exports.formulas import neutralised_text
from backoffice.exports.registry import NUMBER, ExportTarget

# Field types whose text form can never start with a formula trigger (a date, a time, a UUID, a boolean):
# written as they are, without a CASE per row. Durations are not among them ("-1 day").
_FORMULA_FREE_TYPES = ("DateTimeField", "DateField", "TimeField", "UUIDField", "BooleanField")
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


def export_rows(*, target: ExportTarget, queryset: QuerySet, columns: list[str]) -> QuerySet:
    """values_list() of the chosen columns: numbers as they are, every text neutralised in the query."""
    annotations = {}
    names = []
    for index, path in enumerate(columns):
        internal_type = target.model_field(path).get_internal_type()
        if target.kind_of(target.column(path)) == NUMBER or internal_type in _FORMULA_FREE_TYPES:
            names.append(path)
            continue
        name = f"export_c{index}"
        annotations[name] = neutralised_text(path, is_text=internal_type in ("CharField", "TextField", "SlugField"))
        names.append(name)
    return queryset.annotate(**annotations).values_list(*names)
