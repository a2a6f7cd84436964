"""Who may read and manage report emails (gathered by backoffice.accounts.roles).

Every role reads the reports and subscribes itself; operators manage them (their schedules are edited with the
other schedules). Revenue is analysts' data: only `view_revenue` puts it in an email.
"""

from backoffice.accounts.roles import ANALYSTS, OPERATORS, OPS

_READ = ["portal_reports.view_report", "portal_reports.view_reportdelivery"]

ROLE_PERMISSIONS = {
    OPERATORS: [*_READ, "portal_reports.add_report", "portal_reports.change_report", "portal_reports.delete_report"],
    ANALYSTS: [*_READ, "portal_reports.view_revenue"],
    OPS: _READ,
}
