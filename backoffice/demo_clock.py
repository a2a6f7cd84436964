"""Demo data written as of a past moment, so the dashboard's charts show a history and not one bar today."""

import contextlib
import datetime as dt
from unittest import mock

from django.utils import timezone


@contextlib.contextmanager
def clock_at(moment: dt.datetime):
    """Write rows as that moment would have: auto_now_add fields and the services read timezone.now().
    Demo data only (setup_portal --demo); live work always runs at the real time."""
    with mock.patch.object(timezone, "now", return_value=moment):
        yield
