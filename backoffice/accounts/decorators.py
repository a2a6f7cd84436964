"""Guards for the portal's custom pages, the same on every page: anonymous users are sent to the admin
login, signed-in users without the permission get 403 (never a redirect loop, never the page)."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.urls import reverse


def staff_permission_required(*permissions: str):
    """Allow active staff holding every one of `permissions` ('app_label.codename'); superusers hold all.

    The wrapped view carries `required_permissions`, which the role-matrix test reads to know who may pass.
    """

    def decorator(view):
        @wraps(view)
        def guarded(request, *args, **kwargs):
            user = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path(), reverse("admin:login"))
            if not (user.is_active and user.is_staff and user.has_perms(permissions)):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        guarded.required_permissions = tuple(permissions)
        return guarded

    return decorator
