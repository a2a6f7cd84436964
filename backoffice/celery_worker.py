"""The worker's broker consumer, with a bounded reconnect back-off (settings.CELERY_WORKER_CONSUMER).

Celery's consumer reconnects through kombu's `ensure_connection` with its default back-off: 2 s, then 4, 6, 8 ...
up to 30 s between attempts, so after a Redis outage of 10 s a worker sat idle for another ~12 s (seen in the chaos
runs). Here every retry waits at most BROKER_RECONNECT_MAX_INTERVAL_SECONDS (1 s by default): a connection attempt
to a local broker costs next to nothing, and a short outage drains in seconds. Celery offers no setting for it.
"""

from functools import partial

from celery.worker.consumer import Consumer as CeleryConsumer
from django.conf import settings


class Consumer(CeleryConsumer):
    def ensure_connected(self, conn):
        interval = settings.BROKER_RECONNECT_MAX_INTERVAL_SECONDS
        conn.ensure_connection = partial(
            conn.ensure_connection, interval_start=0, interval_step=interval, interval_max=interval
        )
        return super().ensure_connected(conn)
