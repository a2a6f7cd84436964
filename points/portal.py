"""What points add to the portal (collected by backoffice.extension_point): the pipeline and points panels of
the dashboard, and the ledger as an export target. Its admin pages are the ModelAdmins in admin.py."""

from django.utils.translation import gettext_lazy as _

from backoffice.extension_point import IDENTIFIER, Column, ExportTarget, Panel

PANELS = [
    Panel(
        key="pipeline",  # capture and outbox: ops and operators watch the pipeline
        title=_("Points events"),
        permission="points.view_pendingevent",
        template="points/panels/pipeline.html",
        source="points",  # the figures of the points panel, computed once
        position=10,
    ),
    Panel(
        key="points",
        title=_("Points"),
        permission="points.view_ledgerentry",
        template="points/panels/points.html",
        compute="points.dashboard.points_panel_figures",
        shape="points.dashboard.points_panel_shape",
        position=20,
    ),
]

# The ledger export: its columns, in file order (the exports app writes them; see backoffice/exports/).
EXPORTS = [
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
    ),
]
