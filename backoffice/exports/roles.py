"""What each staff role may do with exports (gathered by backoffice.accounts.roles)."""

from backoffice.accounts.roles import ANALYSTS, OPS

ROLE_PERMISSIONS = {
    ANALYSTS: [
        "portal_exports.view_exportjob",
        "portal_exports.export_ledger",
        "portal_exports.export_orders",
        "portal_exports.export_results",
    ],
    OPS: [
        "portal_exports.view_exportjob",
        "portal_exports.export_results",
    ],
}
