"""The task console: Operators run tasks, Ops revoke and retry them. Analysts do not see it (README's role
table): they read task results instead."""

from backoffice.accounts.roles import OPERATORS, OPS

ROLE_PERMISSIONS = {
    OPERATORS: ["portal_console.view_taskrun", "portal_console.run_task"],
    OPS: ["portal_console.view_taskrun", "portal_console.revoke_task", "portal_console.retry_task"],
}
