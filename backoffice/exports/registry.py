"""What can be exported: each exportable model is declared here once.

An entry names the model, its columns (each of a kind, see rendering.py: numbers stay numbers, identifiers
stay text, timestamps are written in the portal's time zone, choices as their labels, and every text is
neutralised against spreadsheet formulas), the permission that allows exporting it, and whether
it may ever be imported. Filters and search come from the model's registered ModelAdmin: an export runs the
changelist's own queryset for the query string the analyst was looking at (see selectors.py).

Entries whose model is not installed (yet) are simply unavailable.
"""

from dataclasses import dataclass, field

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from backoffice.exports.rendering import IDENTIFIER, KINDS, NUMBER, TEXT, kind_of

__all__ = ["IDENTIFIER", "NUMBER", "TEXT", "Column", "ExportTarget", "get_target", "register"]


@dataclass(frozen=True)
class Column:
    path: str  # a field or a related field path (`account__user__username`)
    label: str | Promise
    kind: str | None = None  # one of rendering.KINDS; None: the model field's (rendering.kind_of)


@dataclass(frozen=True)
class ExportTarget:
    key: str
    label: str | Promise
    model_label: str  # "app_label.ModelName"
    permission: str  # "app_label.codename" that allows exporting this data
    columns: tuple[Column, ...]
    importable: bool = False  # ledgers, order events and task results are history: never imported
    default_columns: tuple[str, ...] = field(default=())  # preselected on the form; empty means all

    @property
    def model(self) -> type[models.Model]:
        return apps.get_model(self.model_label)

    @property
    def is_available(self) -> bool:
        try:
            self.model  # noqa: B018 - resolving is the check
        except LookupError:
            return False
        return True

    def column(self, path: str) -> Column:
        for column in self.columns:
            if column.path == path:
                return column
        raise KeyError(path)

    def kind_of(self, column: Column) -> str:
        return kind_of(self.model_field(column.path), column.kind)

    def model_field(self, path: str) -> models.Field:
        model = self.model
        parts = path.split("__")
        for part in parts[:-1]:
            model = model._meta.get_field(part).related_model
        found = model._meta.get_field(parts[-1])
        return found.target_field if found.is_relation and found.many_to_one else found


REGISTRY: dict[str, ExportTarget] = {}

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


def register(target: ExportTarget) -> ExportTarget:
    REGISTRY[target.key] = target
    return target


def get_target(key: str) -> ExportTarget:
    """The available entry for key; KeyError when unknown or its app is not installed."""
    target = REGISTRY[key]
    if not target.is_available:
        raise KeyError(key)
    return target


def available_targets() -> list[ExportTarget]:
    return [target for target in REGISTRY.values() if target.is_available]


def target_for_model(model: type[models.Model]) -> ExportTarget | None:
    label = model._meta.label
    return next((t for t in REGISTRY.values() if t.model_label == label), None)


def is_importable(model: type[models.Model]) -> bool:
    """False for history tables; other models decide through their import permission."""
    if model._meta.label in NEVER_IMPORTABLE:
        return False
    target = target_for_model(model)
    return target is None or target.importable


def check_registry() -> list[str]:
    """Problems in the declarations of available entries (used by the system check)."""
    problems = []
    for target in available_targets():
        for column in target.columns:
            try:
                target.model_field(column.path)
            except (FieldDoesNotExist, AttributeError) as exc:
                problems.append(f"{target.key}: column {column.path!r}: {exc}")
            if column.kind is not None and column.kind not in KINDS:
                problems.append(f"{target.key}: column {column.path!r}: unknown kind {column.kind!r}")
    return problems


register(
    ExportTarget(
        key="results",
        label=_("Task results"),
        model_label="django_celery_results.TaskResult",
        permission="portal_exports.export_results",
        columns=(
            Column("id", _("ID")),
            Column("task_id", _("Task ID"), IDENTIFIER),
            Column("task_name", _("Task name")),
            Column("periodic_task_name", _("Periodic task")),
            Column("status", _("Status")),
            Column("worker", _("Worker")),
            Column("date_created", _("Created")),
            Column("date_started", _("Started")),
            Column("date_done", _("Finished")),
            Column("task_args", _("Arguments")),
            Column("task_kwargs", _("Keyword arguments")),
            Column("result", _("Result")),
            Column("traceback", _("Traceback")),
        ),
        default_columns=("id", "task_id", "task_name", "status", "worker", "date_created", "date_done", "result"),
    )
)

register(
    ExportTarget(
        key="ledger",
        label=_("Points ledger"),
        model_label="points.LedgerEntry",
        permission="portal_exports.export_ledger",
        columns=(
            Column("id", _("ID")),
            Column("serial_number", _("Serial number"), IDENTIFIER),
            Column("account", _("Account")),
            Column("account__user__username", _("User")),
            Column("amount", _("Amount")),
            Column("balance_before", _("Balance before")),
            Column("balance_after", _("Balance after")),
            Column("kind", _("Kind")),
            Column("rule", _("Rule")),
            Column("order_number", _("Order number"), IDENTIFIER),
            Column("idempotency_key", _("Idempotency key"), IDENTIFIER),
            Column("reason", _("Reason")),
            Column("language", _("Language")),
            Column("country", _("Country")),
            Column("location", _("Location")),
            Column("created_by__username", _("Made by")),
            Column("created_at", _("Created")),
        ),
    )
)

register(
    ExportTarget(
        key="orders",
        label=_("Orders"),
        model_label="orders.Order",
        permission="portal_exports.export_orders",
        columns=(
            Column("id", _("ID")),
            Column("number", _("Number"), IDENTIFIER),
            Column("user__username", _("User")),
            Column("status", _("Status")),
            Column("subtotal", _("Subtotal")),
            Column("discount", _("Coupon discount")),
            Column("points_redeemed", _("Points redeemed")),
            Column("points_value", _("Points value")),
            Column("total", _("Total")),
            Column("phone", _("Phone"), IDENTIFIER),
            Column("created_at", _("Created")),
            Column("expires_at", _("Payment deadline")),
            Column("paid_at", _("Paid")),
            Column("fulfilled_at", _("Fulfilled")),
            Column("expired_at", _("Expired")),
            Column("cancelled_at", _("Cancelled")),
            Column("refunded_at", _("Refunded")),
            Column("cancel_reason", _("Cancel reason")),
            Column("needs_refund", _("Needs refund")),
        ),
    )
)
