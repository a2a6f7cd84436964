"""Staff users for tests: one per role, a superuser, and staff with no role at all."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from backoffice.accounts.services import roles_install

PASSWORD = "correct horse battery staple"


def staff_user(username: str, *, role: str | None = None, superuser: bool = False):
    """A staff member in `role` (the groups installed as setup_portal does), or a superuser."""
    if not Group.objects.exists():
        roles_install()
    user_model = get_user_model()
    if superuser:
        return user_model.objects.create_superuser(username, f"{username}@example.com", PASSWORD)
    user = user_model.objects.create_user(username, f"{username}@example.com", PASSWORD, is_staff=True)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user
