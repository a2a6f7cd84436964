"""What each role may do in operations (see backoffice.accounts.roles for how these are gathered)."""

from backoffice.accounts.roles import OPS

ROLE_PERMISSIONS = {
    OPS: [
        "portal_ops.view_ops",  # dashboard worker/queue panels, workers page, Flower through the portal
        "portal_ops.control_workers",  # shutdown, pool grow/shrink, revoke, rate limits (audited)
    ],
}
