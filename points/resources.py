"""django-import-export resources: the ledger (export only) and rules (import with the dry-run preview, export).

Exported text cells are neutralised against spreadsheet formulas here already (the portal's exports app wraps
the ledger export again with its own, identical rule); numbers stay numbers.
"""

from import_export import fields, resources, widgets

from points.models import Action, LedgerEntry, Rule

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: str) -> str:
    """Prefix a cell a spreadsheet would run as a formula with a quote, so it is shown as text."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


class FormulaSafeExportMixin:
    def export_field(self, field, instance, **kwargs):
        value = super().export_field(field, instance, **kwargs)
        if isinstance(value, str) and not isinstance(field.widget, widgets.NumberWidget):
            return neutralise(value)
        return value


class LedgerEntryResource(FormulaSafeExportMixin, resources.ModelResource):
    user = fields.Field(attribute="account__user__username", column_name="user", readonly=True)
    made_by = fields.Field(attribute="created_by__username", column_name="made_by", readonly=True)

    class Meta:
        model = LedgerEntry
        fields = (
            "id",
            "serial_number",
            "user",
            "amount",
            "balance_before",
            "balance_after",
            "kind",
            "rule",
            "order_number",
            "idempotency_key",
            "reason",
            "language",
            "country",
            "location",
            "made_by",
            "created_at",
            "reverses",
        )
        export_order = fields


class RuleResource(FormulaSafeExportMixin, resources.ModelResource):
    action = fields.Field(
        attribute="action", column_name="action", widget=widgets.ForeignKeyWidget(Action, field="code")
    )

    class Meta:
        model = Rule
        fields = (
            "id",
            "name",
            "action",
            "points",
            "kind",
            "period",
            "required_count",
            "allow_repeat_business_id",
            "awardee_cap",
            "awardee_cap_scope",
            "per_user_cap",
            "starts_at",
            "ends_at",
            "status",
        )
        export_order = fields
        clean_model_instances = True  # each row runs Rule.full_clean(): the preview shows the same errors
        skip_unchanged = True
        report_skipped = True
