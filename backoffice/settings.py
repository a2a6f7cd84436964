"""Backoffice settings: one module, read from the environment.

Every value has an embedded default that lets `make run` work with nothing set (SQLite in var/, the
embedded Redis). Production (`DEBUG` off) refuses to start without a real SECRET_KEY and ALLOWED_HOSTS.
See README.md for the table of variables; .env.example lists them.
"""

from pathlib import Path

import environ
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"  # local state for development: SQLite, embedded Redis, export files

env = environ.Env()
# The real environment wins over the file; ENV_FILE points elsewhere (or at /dev/null to read none).
environ.Env.read_env(env.str("ENV_FILE", default=str(BASE_DIR / ".env")), overwrite=False)

# ---------------------------------------------------------------------------------------------------------
# Core
# ---------------------------------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=True)

_DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105 - refused when DEBUG is off
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET_KEY)
# Rotation: the previous key(s) here keep existing sessions and signed links valid (deploy/README.md).
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])

if not DEBUG:
    # Django's own check (security.W009) only warns; production must not start at all with these.
    if SECRET_KEY == _DEV_SECRET_KEY or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        raise ImproperlyConfigured("SECRET_KEY must be set to a random value of at least 50 characters.")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off.")

INSTALLED_APPS = [
    "backoffice.apps.BackofficeAdminConfig",  # django.contrib.admin with the portal's AdminSite
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "django_celery_results",
    "import_export",
    "axes",
    "csp",
    "backoffice",
    "backoffice.accounts",
    "backoffice.audit",
    "backoffice.notify",
    "backoffice.schedules",
    "backoffice.results",
    "backoffice.console",
    "backoffice.ops",
    "backoffice.exports",
    "backoffice.alerts",
    "backoffice.reports",
    "points",
    "orders",
]

MIDDLEWARE = [
    "backoffice.errors.ApiErrorMiddleware",  # first: every /api/ error, whoever answers it, becomes JSON
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "points.middleware.PointsCaptureMiddleware",  # needs request.user (system check points.E001)
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: it answers locked-out logins
]

ROOT_URLCONF = "backoffice.urls"
CSRF_FAILURE_VIEW = "backoffice.errors.csrf_failure"  # the JSON error shape under /api/, Django's page elsewhere
WSGI_APPLICATION = "backoffice.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first, so a locked-out login never reaches the password check
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# ---------------------------------------------------------------------------------------------------------
# Database: DATABASE_URL (PostgreSQL in production), else a SQLite file in var/.
# ---------------------------------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)  # workers keep their connection
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Behind PgBouncer in transaction pooling mode (deploy/README.md) a server-side cursor could outlive the server
# connection it was opened on: Django's documented setting for that case.
# https://docs.djangoproject.com/en/5.2/ref/databases/#transaction-pooling-server-side-cursors
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env.bool("DATABASE_TRANSACTION_POOLING", default=False)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the writer; IMMEDIATE takes the write lock at BEGIN, so concurrent writers
    # wait (up to `timeout` seconds) instead of failing with "database is locked" on lock upgrade.
    # https://docs.djangoproject.com/en/5.2/ref/databases/#sqlite-transaction-behavior
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # SQLite connections are cheap; keep file locks short-lived
    VAR_DIR.mkdir(exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---------------------------------------------------------------------------------------------------------
# Redis: broker and cache. Unset means the embedded redis-server (see backoffice/embedded_redis.py).
# ---------------------------------------------------------------------------------------------------------
EMBEDDED_REDIS_PORT = env.int("EMBEDDED_REDIS_PORT", default=6390)
REDIS_URL = env.str("REDIS_URL", default=f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0")
REDIS_SOCKET_TIMEOUT = 1.0  # seconds; a dead Redis must never hang a web request

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "backoffice",
        "OPTIONS": {"socket_timeout": REDIS_SOCKET_TIMEOUT, "socket_connect_timeout": REDIS_SOCKET_TIMEOUT},
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.db"  # sessions survive a Redis outage

# ---------------------------------------------------------------------------------------------------------
# Celery: https://docs.celeryq.dev/en/stable/userguide/configuration.html
# ---------------------------------------------------------------------------------------------------------
# The broker is Redis unless CELERY_BROKER_URL names RabbitMQ (amqp://); Redis stays the cache and the lock store
# either way. deploy/README.md says when to choose which.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or REDIS_URL
BROKER_IS_AMQP = CELERY_BROKER_URL.split("://", 1)[0] in ("amqp", "amqps", "pyamqp")
CELERY_RESULT_BACKEND = "django-db"  # django-celery-results: results are rows the portal can query
CELERY_RESULT_EXTENDED = True  # store task name, args, kwargs, worker and periodic task name
CELERY_RESULT_EXPIRES = None  # retention is ours (backoffice.results), batched, per task name
CELERY_CACHE_BACKEND = "default"
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]  # never pickle: a message must not be able to run code
CELERY_TASK_TRACK_STARTED = True  # the console shows STARTED, not just PENDING
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=600)  # hard kill of a stuck task
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=540)  # lets it clean up first
CELERY_TASK_ACKS_LATE = True  # a killed worker's task is redelivered; tasks are idempotent
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
CELERY_WORKER_SEND_TASK_EVENTS = True  # Flower and the dashboards need task events
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # Django's LOGGING stays in charge
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 2  # seconds to connect before a publish gives up
# The longest ETA we schedule must stay under the visibility timeout, or Redis redelivers it early.
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=6 * 3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    "socket_timeout": REDIS_SOCKET_TIMEOUT,
    "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
    "max_retries": 1,  # a publish retries once, then raises: callers that must not lose work use an outbox
}
if BROKER_IS_AMQP:
    # RabbitMQ: a publish returns once the broker has the message (publisher confirms), and the queues are quorum
    # queues (replicated, durable). https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/rabbitmq.html
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True, "max_retries": 1}
    CELERY_TASK_DEFAULT_QUEUE_TYPE = "quorum"
    CELERY_TASK_DEFAULT_EXCHANGE_TYPE = "topic"
    CELERY_WORKER_DETECT_QUORUM_QUEUES = True  # quorum queues have no global QoS: Celery uses per-consumer prefetch
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
CELERY_TASK_DEFAULT_QUEUE = "default"
# Two queue sets, each served by its own worker (deploy/Procfile): fast work on default, points and orders; long
# work (exports, reports: minutes to hours each) on exports and reports, so it never holds up points, orders or
# notifications. Each queue on its own direct exchange and routing key, so a route by queue name lands in it.
FAST_QUEUES = ("default", "points", "orders")
LONG_QUEUES = ("exports", "reports")
# The queues the workers of this deployment consume, both sets together (deploy/Procfile's --queues): the console
# and schedules accept only these, since a message sent to a queue no worker reads waits in the broker forever.
WORKER_QUEUES = env.list("WORKER_QUEUES", default=[*FAST_QUEUES, *LONG_QUEUES])
# On RabbitMQ: quorum queues, on topic exchanges, because ETA tasks (an order's payment deadline) then travel by
# Celery's native delayed delivery, which binds each queue's exchange and cannot use a direct one.
CELERY_TASK_QUEUES = [
    Queue(name, Exchange(name, type="topic"), routing_key=name, queue_arguments={"x-queue-type": "quorum"})
    if BROKER_IS_AMQP
    else Queue(name, Exchange(name), routing_key=name)
    for name in WORKER_QUEUES
]
CELERY_TASK_ROUTES = {
    "points.*": {"queue": "points"},
    "orders.*": {"queue": "orders"},
    "exports.run": {"queue": "exports"},  # the job itself; its e-mail and the file expiry are quick (default)
    "reports.*": {"queue": "reports"},
}
# A worker that lost the broker retries at most this far apart (Celery's own back-off grows 2, 4, 6 ... 30 s, so a
# 10-s Redis outage cost ~12 s more of waiting): see backoffice/celery_worker.py.
CELERY_WORKER_CONSUMER = "backoffice.celery_worker:Consumer"
BROKER_RECONNECT_MAX_INTERVAL_SECONDS = env.float("BROKER_RECONNECT_MAX_INTERVAL_SECONDS", default=1.0)
CELERY_BEAT_SCHEDULER = "backoffice.schedules.scheduler:PortalScheduler"
CELERY_TIMEZONE = "UTC"  # schedules run in UTC internally; pages show TIME_ZONE

# ---------------------------------------------------------------------------------------------------------
# Internationalisation
# ---------------------------------------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")  # business periods (days, weeks) are computed in this zone
USE_I18N = True
USE_TZ = True

# ---------------------------------------------------------------------------------------------------------
# Static files: whitenoise serves them from gunicorn in every mode.
# ---------------------------------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")

# ---------------------------------------------------------------------------------------------------------
# Security: production values pass `manage.py check --deploy --fail-level WARNING`.
# ---------------------------------------------------------------------------------------------------------
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")  # nginx sets it (deploy/nginx.conf)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
X_FRAME_OPTIONS = "DENY"  # the Flower proxy alone opts into SAMEORIGIN (@xframe_options_sameorigin)

# Content Security Policy (django-csp): https://django-csp.readthedocs.io/en/latest/configuration.html
# Scripts only from the portal's origin or inline with the request's nonce (`nonce="{{ request.csp_nonce }}"`);
# nothing from other origins at all. The Flower proxy widens it for Flower's pages only (backoffice/ops/views.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "frame-src": [SELF],  # the framed Flower page (/ops/monitor/)
        "frame-ancestors": [NONE],  # as X_FRAME_OPTIONS; the Flower proxy alone allows its own origin
        "form-action": [SELF],
        "base-uri": [SELF],
        "object-src": [NONE],
    }
}
SILENCED_SYSTEM_CHECKS = env.list("SILENCED_SYSTEM_CHECKS", default=[])

# django-axes: lock an account+address pair after repeated failed admin logins.
# https://django-axes.readthedocs.io/en/latest/4_configuration.html
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = 1  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# The client address: X-Forwarded-For trusted for exactly TRUSTED_PROXY_COUNT hops (1 behind deploy/nginx.conf),
# REMOTE_ADDR otherwise, so a client cannot dodge the lockout by forging the header.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "backoffice.accounts.client_ip.client_ip_address"
AXES_RESET_ON_SUCCESS = True

# ---------------------------------------------------------------------------------------------------------
# Email and SMS
# ---------------------------------------------------------------------------------------------------------
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="backoffice@localhost")
SMS_BACKEND = env.str("SMS_BACKEND", default="backoffice.notify.sms.ConsoleSmsBackend")
SMS_HTTP_URL = env.str("SMS_HTTP_URL", default="")
SMS_HTTP_TOKEN = env.str("SMS_HTTP_TOKEN", default="")

# ---------------------------------------------------------------------------------------------------------
# Portal
# ---------------------------------------------------------------------------------------------------------
ORDER_PAYMENT_TIMEOUT_MINUTES = env.float("ORDER_PAYMENT_TIMEOUT_MINUTES", default=30)  # 0.1: 6 s (smoke)
PAYMENT_WEBHOOK_SECRET = env.str("PAYMENT_WEBHOOK_SECRET", default="dev-payment-secret" if DEBUG else "")
PORTAL_URL = env.str("PORTAL_URL", default="http://127.0.0.1:8000")  # where report emails' links point
FLOWER_URL = env.str("FLOWER_URL", default="http://127.0.0.1:5555/ops/flower")
FLOWER_BASIC_AUTH = env.str("FLOWER_BASIC_AUTH", default="")  # user:password that only the portal knows
# Flower's Unix socket (`make run` puts it in var/run/, a 0700 directory): set, the proxy connects through it and
# FLOWER_URL gives only the path. Flower reads the same variable, and FLOWER_BASIC_AUTH, from its environment.
FLOWER_UNIX_SOCKET = env.str("FLOWER_UNIX_SOCKET", default="")
BEAT_HEARTBEAT_KEY = "backoffice:beat:heartbeat"
BEAT_STALE_AFTER_SECONDS = 60  # /healthz calls beat stale when its last tick is older than this
# /healthz's worker ping returns as soon as this many workers answered (fewer: it waits its full second).
HEALTH_EXPECTED_WORKERS = env.int("HEALTH_EXPECTED_WORKERS", default=1)
RESULTS_RETENTION_DAYS = env.int("RESULTS_RETENTION_DAYS", default=30)  # task results kept this long
# Per task name, overriding RESULTS_RETENTION_DAYS: RESULTS_RETENTION_BY_TASK="backoffice.ping=1;points.relay=7"
RESULTS_RETENTION_BY_TASK = env.dict("RESULTS_RETENTION_BY_TASK", cast={"value": int}, default={})
BEAT_LOCK_KEY = "backoffice:beat:lock"  # one beat sends at a time (backoffice/schedules/scheduler.py)
# A killed beat's lock frees itself after this; the standby takes over within it (the holder renews at 1/3).
BEAT_LOCK_TTL_SECONDS = env.int("BEAT_LOCK_TTL_SECONDS", default=15)
# Beat's publishes skip Celery's task-sent event (Celery's default; ~30% of a dispatch): Flower shows beat's
# tasks from "received" on. Set to 1 to send them.
BEAT_SEND_SENT_EVENTS = env.bool("BEAT_SEND_SENT_EVENTS", default=False)
# Exports (backoffice/exports): files written by workers and served by web, so a shared path in production.
EXPORTS_ROOT = env.path("EXPORTS_ROOT", default=VAR_DIR / "exports")
EXPORTS_EXPIRE_HOURS = env.int("EXPORTS_EXPIRE_HOURS", default=24)  # files are deleted by exports.expire after this
EXPORTS_STREAM_MAX_ROWS = env.int("EXPORTS_STREAM_MAX_ROWS", default=100_000)  # larger ones run as jobs
# Cap on a job's rows per second, to spare a busy database (0: as fast as it streams).
EXPORTS_MAX_ROWS_PER_SECOND = env.int("EXPORTS_MAX_ROWS_PER_SECOND", default=0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"client_errors_on_one_line": {"()": "backoffice.logging.ClientErrorsOnOneLine"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's default config gives `django` a console handler of its own (when DEBUG): without this, each of
        # its lines would print twice, once there and once through the root handler.
        "django": {"handlers": [], "propagate": True},
        "django.request": {"filters": ["client_errors_on_one_line"]},  # a 403 or 404 is one line (see the filter)
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}
