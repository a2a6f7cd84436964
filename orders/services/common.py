"""What every stage of the orders shares: the error its callers answer with, and publishing after commit."""

from datetime import datetime

from backoffice.errors import AppError
from backoffice.publishing import task_publish_on_commit


class OrderError(AppError):
    """A request the orders cannot honour; nothing was written. `code` is stable for API clients."""


def enqueue(task, *, eta: datetime | None = None, **kwargs) -> None:
    """Publish after commit; the expiry and fulfilment sweepers are the source of truth, so a lost message
    costs a delay (backoffice.publishing logs it once)."""
    task_publish_on_commit(task, kwargs=kwargs, eta=eta)
