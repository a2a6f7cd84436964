"""Staff users for tests: one per role, a superuser, and staff with no role at all.

Tests get them through the `role_user(role)` fixture (tests/conftest.py); this is what it calls."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from backoffice.accounts.roles import ROLES
from backoffice.accounts.services import roles_install

PASSWORD = "correct horse battery staple"
SUPERUSER = "superuser"  # role_user(SUPERUSER): not a role, every permission


def staff_user(username: str, *, role: str | None = None, superuser: bool = False):
    """A staff member in `role`, whose group holds exactly the real role matrix (every app's roles.py, installed
    as setup_portal does), or a superuser."""
    if role is not None and role not in ROLES:
        raise ValueError(f"{role!r} is not a role; roles: {', '.join(ROLES)}")
    if Group.objects.filter(name__in=ROLES).count() < len(ROLES):
        roles_install()
    user_model = get_user_model()
    if superuser:
        return user_model.objects.create_superuser(username, f"{username}@example.com", PASSWORD)
    user = user_model.objects.create_user(username, f"{username}@example.com", PASSWORD, is_staff=True)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user
