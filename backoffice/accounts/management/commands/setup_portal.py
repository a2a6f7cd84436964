"""Install what the portal needs to be usable, idempotently: roles, default schedules, the superuser.

With --demo, also demo staff (one per role) and each app's demo data (an app's `demo.py` module with a
`demo_install(*, stdout)` function).
"""

import contextlib
import importlib
import logging
import os

import redis
from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils.module_loading import module_has_submodule

from backoffice.accounts.roles import ANALYSTS, OPERATORS, OPS
from backoffice.accounts.services import roles_install, staff_user_ensure, superuser_ensure
from backoffice.alerts.services import alert_rules_install_defaults
from backoffice.schedules.services import schedules_install_defaults

DEMO_STAFF = {"operator": OPERATORS, "analyst": ANALYSTS, "ops": OPS}


class _CountBrokerWarnings(logging.Filter):
    """The warnings the demo's services log when a message cannot be published (the sweepers and the relay pick
    the work up later): counted, not printed. `make run` runs setup_portal before it starts the embedded Redis."""

    def __init__(self):
        super().__init__()
        self.seen: set[int] = set()

    # The after-commit publish helper and the capture's wake-up (which runs on a thread of its own) say so.
    LOGGERS = ("backoffice.publishing", "points.capture")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and record.name in self.LOGGERS:
            self.seen.add(id(record))
            return False
        return True


def _broker_reachable() -> bool:
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


class Command(BaseCommand):
    help = "Create staff roles, default schedules and the admin user if missing (--demo: and demo data)."

    def add_arguments(self, parser):
        parser.add_argument("--demo", action="store_true", help="also install demo staff and demo data")
        parser.add_argument("--username", default="admin")

    def handle(self, *args, demo: bool, username: str, **options):
        for role, count in roles_install().items():
            self.stdout.write(f"role {role}: {count} permissions")
        report = schedules_install_defaults()
        for outcome in ("created", "kept", "skipped"):
            for name in report[outcome]:
                self.stdout.write(f"schedule {name!r}: {outcome}")
        for outcome, names in alert_rules_install_defaults().items():
            for name in names:
                self.stdout.write(f"alert rule {name!r}: {outcome}")

        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        generated = superuser_ensure(username=username, password=password)
        if generated:
            self.stdout.write(
                self.style.WARNING(f"superuser {username!r} created with password: {generated}  (shown once)")
            )
        if demo:
            with self._broker_warnings_summed():
                self._install_demo(password=password or generated)

    @contextlib.contextmanager
    def _broker_warnings_summed(self):
        """With Redis not up yet, one line instead of a warning per demo order or points notice."""
        if _broker_reachable():
            yield
            return
        counter = _CountBrokerWarnings()
        for name in counter.LOGGERS:
            logging.getLogger(name).addFilter(counter)
        # Left in place until the command's process ends: the capture's wake-up thread may still report after the
        # block, and nothing else logs in this command afterwards.
        yield
        if counter.seen:
            self.stdout.write(
                f"broker not up yet (make run starts it next): {len(counter.seen)} demo task messages left to the "
                "sweepers and the outbox relay, which run once beat and a worker are up"
            )

    def _install_demo(self, *, password: str | None) -> None:
        if password:  # demo staff share the admin's password, so one secret opens the demo
            for name, role in DEMO_STAFF.items():
                if staff_user_ensure(username=name, role=role, password=password):
                    self.stdout.write(f"demo staff {name!r} ({role}) created")
        for config in apps.get_app_configs():
            if module_has_submodule(config.module, "demo"):
                importlib.import_module(f"{config.name}.demo").demo_install(stdout=self.stdout)
