"""Beat's scheduler: django-celery-beat's DatabaseScheduler plus a heartbeat for /healthz."""

import logging
import time

import redis
from django.conf import settings
from django_celery_beat.schedulers import DatabaseScheduler

logger = logging.getLogger(__name__)

HEARTBEAT_EVERY_S = 5.0  # well inside BEAT_STALE_AFTER_SECONDS


class PortalScheduler(DatabaseScheduler):
    _last_heartbeat = 0.0
    _heartbeat_client = None

    def tick(self, *args, **kwargs):
        self._heartbeat()
        return super().tick(*args, **kwargs)

    def _heartbeat(self) -> None:
        now = time.time()
        if now - self._last_heartbeat < HEARTBEAT_EVERY_S:
            return
        if self._heartbeat_client is None:
            self._heartbeat_client = redis.Redis.from_url(
                settings.REDIS_URL, socket_timeout=settings.REDIS_SOCKET_TIMEOUT
            )
        try:
            self._heartbeat_client.set(settings.BEAT_HEARTBEAT_KEY, now, ex=24 * 3600)
            self._last_heartbeat = now
        except redis.RedisError as exc:  # beat keeps scheduling; /healthz will say the broker is down
            logger.warning("beat heartbeat not written: %s", exc)
