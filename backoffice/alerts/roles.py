"""Alerts: Ops edit and silence rules and read the history; Operators read them and may silence."""

from backoffice.accounts.roles import OPERATORS, OPS

ROLE_PERMISSIONS = {
    OPS: [
        "portal_alerts.view_alertrule",
        "portal_alerts.add_alertrule",
        "portal_alerts.change_alertrule",
        "portal_alerts.delete_alertrule",
        "portal_alerts.silence_alertrule",
        "portal_alerts.view_alertevent",
        "portal_alerts.view_alertnotification",
    ],
    OPERATORS: [
        "portal_alerts.view_alertrule",
        "portal_alerts.silence_alertrule",
        "portal_alerts.view_alertevent",
    ],
}
