"""django-import-export resources: the ledger (export only) and rules (import with the dry-run preview, export).

Every stock export in the portal is made formula-safe by the exports app's rules, which the admins ask through
ExportAdminMixin (backoffice/extension_point.py), so the rule lives in one place.
"""

from import_export import fields, resources, widgets

from points.models import Action, LedgerEntry, Rule


class LedgerEntryResource(resources.ModelResource):
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


class RuleResource(resources.ModelResource):
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
