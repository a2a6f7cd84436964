"""What can be exported: the export targets the apps declare in their portal.py, looked up by key or model.

A target (backoffice.extension_point.ExportTarget) names the model, its columns (each of a kind: how each kind is
written, for every path and format, is backoffice/exports/rendering.py), the permission that allows
exporting it, and whether it may ever be imported. Each lives in the portal.py of the app that owns the data:
points/portal.py (ledger), orders/portal.py (orders), backoffice/results/portal.py (task results). Filters and
search come from the model's ModelAdmin on the portal's site: an export runs the changelist's own queryset for
the query string the analyst was looking at (see selectors.py).

Targets whose model is not installed (yet) are simply unavailable.
"""

from django.db import models

from backoffice.exports.rendering import KINDS
from backoffice.extension_point import IDENTIFIER, NUMBER, TEXT, Column, ExportTarget, collect

__all__ = [
    "IDENTIFIER",
    "NEVER_IMPORTABLE",
    "NUMBER",
    "TEXT",
    "Column",
    "ExportTarget",
    "available_targets",
    "check_registry",
    "get_target",
    "is_importable",
    "target_for_model",
]

# History tables: exporting them is fine, importing into them never is (whatever the permissions say).
NEVER_IMPORTABLE = frozenset(
    {
        "points.LedgerEntry",
        "orders.OrderEvent",
        "orders.PaymentEvent",
        "django_celery_results.TaskResult",
        "django_celery_results.GroupResult",
    }
)


def get_target(key: str) -> ExportTarget:
    """The available target for key; KeyError when unknown or its app is not installed."""
    try:
        target = collect().export(key)
    except StopIteration:
        raise KeyError(key) from None
    if not target.is_available:
        raise KeyError(key)
    return target


def available_targets() -> list[ExportTarget]:
    return [target for target in collect().exports if target.is_available]


def target_for_model(model: type[models.Model]) -> ExportTarget | None:
    label = model._meta.label
    return next((t for t in collect().exports if t.model_label == label), None)


def is_importable(model: type[models.Model]) -> bool:
    """False for history tables; other models decide through their import permission."""
    if model._meta.label in NEVER_IMPORTABLE:
        return False
    target = target_for_model(model)
    return target is None or target.importable


def check_registry() -> list[str]:
    """Problems in the declarations of available targets (used by the system check)."""
    problems = [problem for target in available_targets() for problem in target.column_problems()]
    for target in available_targets():
        problems.extend(
            f"{target.key}: column {column.path!r}: unknown kind {column.kind!r}"
            for column in target.columns
            if column.kind is not None and column.kind not in KINDS
        )
    return problems
