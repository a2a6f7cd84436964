"""State changes for staff accounts and roles."""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from backoffice.accounts.roles import ROLES, resolve_permissions, role_permissions


@transaction.atomic
def roles_install() -> dict[str, int]:
    """Create the staff groups and give each exactly the permissions of the documented matrix."""
    matrix = role_permissions()
    counts = {}
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        permissions = resolve_permissions(matrix[role])
        group.permissions.set(permissions)
        counts[role] = len(permissions)
    return counts


def superuser_ensure(*, username: str, password: str | None) -> str | None:
    """Create the superuser if missing. Returns the password when one was generated, else None."""
    user_model = get_user_model()
    if user_model.objects.filter(username=username).exists():
        return None
    generated = None
    if not password:
        generated = password = secrets.token_urlsafe(12)
    user_model.objects.create_superuser(username=username, email=f"{username}@localhost", password=password)
    return generated


def staff_user_ensure(*, username: str, role: str, password: str) -> bool:
    """Create a staff member in one role if missing; True when created."""
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        username=username, defaults={"is_staff": True, "email": f"{username}@localhost"}
    )
    if created:
        user.set_password(password)
        user.save(update_fields=["password"])
        user.groups.add(Group.objects.get(name=role))
    return created
