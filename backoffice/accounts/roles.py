"""Staff roles: the three groups and where their permissions come from.

Each app that has something for a role declares it in its own `roles.py` as
`ROLE_PERMISSIONS = {OPERATORS: ["app_label.codename", ...], ...}`; `role_permissions()` gathers them all.
The matrix, role by role, is documented in README.md ("Roles").
"""

import importlib

from django.apps import apps
from django.contrib.auth.models import Permission
from django.utils.module_loading import module_has_submodule

OPERATORS = "Operators"  # edit points tasks, rules and schedules, run tasks, adjust balances
ANALYSTS = "Analysts"  # read ledgers, orders and results, export them
OPS = "Ops"  # watch and control workers, Flower, revoke and retry tasks
ROLES = (OPERATORS, ANALYSTS, OPS)

# The stock beat and results permissions moved to backoffice/schedules/roles.py and backoffice/results/roles.py,
# beside the admins that use them.
ROLE_PERMISSIONS: dict[str, list[str]] = {}


def role_permissions() -> dict[str, set[str]]:
    """Every role's permissions as 'app_label.codename', from all installed apps' roles modules."""
    merged: dict[str, set[str]] = {role: set() for role in ROLES}
    for config in apps.get_app_configs():
        if not module_has_submodule(config.module, "roles"):
            continue
        module = importlib.import_module(f"{config.name}.roles")
        for role, perms in getattr(module, "ROLE_PERMISSIONS", {}).items():
            merged[role].update(perms)
    return merged


def resolve_permissions(names: set[str]) -> list[Permission]:
    """Permission rows for 'app_label.codename' names; an unknown name is a programming error."""
    wanted = {tuple(name.split(".", 1)) for name in names}
    found = {
        (perm.content_type.app_label, perm.codename): perm
        for perm in Permission.objects.select_related("content_type").filter(
            codename__in={codename for _, codename in wanted}
        )
    }
    missing = sorted(".".join(key) for key in wanted - found.keys())
    if missing:
        raise LookupError(f"unknown permissions in the role matrix: {', '.join(missing)}")
    return [found[key] for key in sorted(wanted)]
