"""The one way to get a Redis client (the broker's and the cache's Redis, REDIS_URL).

One client per timeout per process: redis-py clients are thread-safe and pool their connections, so callers
share them instead of opening a pool each time. Every client has a timeout, so a dead Redis never hangs a web
request: the default is REDIS_SOCKET_TIMEOUT; hot paths (the points capture) pass a shorter one.
"""

import functools

import redis
from django.conf import settings


def redis_client(*, timeout: float | None = None) -> redis.Redis:
    return _client(settings.REDIS_URL, settings.REDIS_SOCKET_TIMEOUT if timeout is None else timeout)


@functools.cache
def _client(url: str, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


def redis_clients_reset() -> None:
    """Forget the shared clients (after a fork, or in a test that points REDIS_URL elsewhere)."""
    _client.cache_clear()
