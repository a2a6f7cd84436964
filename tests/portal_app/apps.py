from django.apps import AppConfig


class PortalAppConfig(AppConfig):
    """A feature that exists only in the tests: it joins the portal through its own portal.py and nothing else."""

    name = "tests.portal_app"
    label = "portal_app"
    verbose_name = "Notes (test feature)"
