"""Tasks of the portal's wiring: a round trip through the real broker and worker."""

from celery import shared_task


@shared_task(name="backoffice.ping", staff_runnable=True)
def ping_task(message: str = "pong") -> str:
    """Answer with the message: proves a worker consumes the default queue and stores results."""
    return message
