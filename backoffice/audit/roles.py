"""Who reads the audit view: it lists every staff action from the admin log."""

from backoffice.accounts.roles import OPS

ROLE_PERMISSIONS = {OPS: ["admin.view_logentry"]}
