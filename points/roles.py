"""What each staff role may do with points (gathered by backoffice.accounts.roles).

Operators edit points tasks and rules (import, export, simulate) and adjust balances; Analysts read the ledger,
accounts, progress and records (the ledger export permission is the exports app's `export_ledger`); Ops see the
tasks, rules and the outbox.
"""

from backoffice.accounts.roles import ANALYSTS, OPERATORS, OPS

_HISTORY = [
    "points.view_account",
    "points.view_ledgerentry",
    "points.view_ruleprogress",
    "points.view_actionrecord",
]

ROLE_PERMISSIONS = {
    OPERATORS: [
        "points.view_action",
        "points.add_action",
        "points.change_action",
        "points.view_rule",
        "points.add_rule",
        "points.change_rule",
        "points.import_rule",
        "points.export_rule",
        "points.simulate_rule",
        "points.adjust_account",
        "points.view_pendingevent",
        *_HISTORY,
    ],
    ANALYSTS: [*_HISTORY, "points.view_action", "points.view_rule", "points.export_rule"],
    OPS: ["points.view_action", "points.view_rule", "points.view_pendingevent"],
}
