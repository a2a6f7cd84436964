"""Test settings: the real settings, with a throwaway Redis and a file test database when none is given."""

import os

# Playwright's sync API keeps an event loop in the test thread; the ORM calls in browser tests are
# ordinary synchronous calls all the same.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

if not os.environ.get("REDIS_URL"):
    # No Redis configured: start the embedded one on a free port for this test run (stopped at exit).
    from backoffice.embedded_redis import start

    os.environ["REDIS_URL"], _embedded_redis = start()

from backoffice.settings import *  # noqa: E402,F403
from backoffice.settings import DATABASES, INSTALLED_APPS, VAR_DIR  # noqa: E402

# A feature that exists only in the tests, to prove that an app joins the portal through its portal.py alone.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.portal_app"]

PASSWORD_HASHERS = ["tests.hashers.FastPBKDF2PasswordHasher"]
AXES_ENABLED = False  # the lockout has its own tests, which turn it back on

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so worker processes started by integration tests see the same database.
    VAR_DIR.mkdir(exist_ok=True)
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
