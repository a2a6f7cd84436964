"""The task console: Operators run tasks, Ops revoke and retry them, Analysts look."""

from backoffice.accounts.roles import ANALYSTS, OPERATORS, OPS

ROLE_PERMISSIONS = {
    OPERATORS: ["portal_console.view_taskrun", "portal_console.run_task"],
    ANALYSTS: ["portal_console.view_taskrun"],
    OPS: ["portal_console.view_taskrun", "portal_console.revoke_task", "portal_console.retry_task"],
}
