"""System checks for the points engine's configuration."""

from django.conf import settings
from django.core.checks import Error, register

CAPTURE_MIDDLEWARE = "points.middleware.PointsCaptureMiddleware"
AUTHENTICATION_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"


@register()
def capture_middleware_after_authentication(app_configs, **kwargs):
    middleware = list(settings.MIDDLEWARE)
    if CAPTURE_MIDDLEWARE not in middleware:
        return []
    if AUTHENTICATION_MIDDLEWARE not in middleware or middleware.index(CAPTURE_MIDDLEWARE) < middleware.index(
        AUTHENTICATION_MIDDLEWARE
    ):
        return [
            Error(
                "The points capture middleware must come after AuthenticationMiddleware.",
                hint=f"Move {CAPTURE_MIDDLEWARE} below {AUTHENTICATION_MIDDLEWARE} in MIDDLEWARE: it needs "
                "request.user to know whose action it captures.",
                obj=CAPTURE_MIDDLEWARE,
                id="points.E001",
            )
        ]
    return []
