"""Logging pieces named in settings.LOGGING: what a person reads in `make run`'s log, and in production's."""

import logging


class ClientErrorsOnOneLine(logging.Filter):
    """An expected 4xx (a 403 for a page the role may not open, a 404) is one line, not the view's traceback.

    Django's `django.request` logger passes the PermissionDenied or Http404 it caught as exc_info, which prints
    some 25 lines of traceback for what is a normal answer; 5xx keep their traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if status is not None and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
