"""What every stage of the orders shares: the error its callers answer with, and publishing after commit."""

import logging
from datetime import datetime

from django.db import transaction
from kombu.exceptions import OperationalError as KombuOperationalError

logger = logging.getLogger("orders.services")


class OrderError(Exception):
    """A request the orders cannot honour; nothing was written. `code` is stable for API clients."""

    def __init__(self, code: str, message: str, *, status: int = 400, field: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.field = field

    def as_json(self) -> dict:
        body = {"error": self.code, "message": str(self.message)}
        if self.field:
            body["field"] = self.field
        return body


def enqueue(task, *, eta: datetime | None = None, **kwargs) -> None:
    """Publish after commit. A broker outage must not fail the request: the expiry and fulfilment sweepers
    are the source of truth, so a lost message costs a delay, and one warning line instead of a traceback."""

    def publish() -> None:
        try:
            task.apply_async(kwargs=kwargs, eta=eta)
        except KombuOperationalError as exc:
            logger.warning("orders: %s %s not queued, broker unavailable (%s)", task.name, kwargs, exc)

    transaction.on_commit(publish)
