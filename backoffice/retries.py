"""One retry policy per kind of task. A task takes its kind's policy into its decorator:
`@shared_task(name=..., **RETRY_DATABASE)`, or `**retry_delivery(SomeTransientError)`.

Tasks are idempotent (they re-check state before acting), so a retry can only finish the work, never repeat it.
"""

import smtplib

from django.db import OperationalError

# Work on our own database: a deadlock, a serialization failure or a dropped connection passes within seconds.
RETRY_DATABASE = {"autoretry_for": (OperationalError,), "retry_backoff": 1, "retry_jitter": True, "max_retries": 5}

# Delivery through someone else's service (SMS provider, SMTP): its outages last minutes, so back off up to ten
# minutes between tries, about half an hour in all. Only the errors named are retried: a refused recipient or
# bad credentials will not get better.
DELIVERY_BACKOFF = {"retry_backoff": 5, "retry_backoff_max": 600, "retry_jitter": True, "max_retries": 6}

# Connection trouble with the mail server is worth retrying; a refused recipient is not.
EMAIL_TRANSIENT_ERRORS = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError, TimeoutError)


def retry_delivery(*transient: type[BaseException]) -> dict:
    return {"autoretry_for": transient, **DELIVERY_BACKOFF}
