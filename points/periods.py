"""Business periods (day, week, month, year, all time), computed in the configured time zone from an event's
time. A period is named by the local date it starts on."""

import datetime as dt
import zoneinfo

from django.conf import settings

EPOCH = dt.date(1970, 1, 1)  # the single "period" of a rule without one


def business_zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def period_start(moment: dt.datetime, period: str) -> dt.date:
    """The local date the period containing `moment` starts on (weeks start on Monday)."""
    if period == "none":
        return EPOCH
    day = moment.astimezone(business_zone()).date()
    if period == "day":
        return day
    if period == "week":
        return day - dt.timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    if period == "year":
        return day.replace(month=1, day=1)
    raise ValueError(f"unknown period {period!r}")


def next_period(start: dt.date, period: str) -> dt.date:
    if period == "day":
        return start + dt.timedelta(days=1)
    if period == "week":
        return start + dt.timedelta(days=7)
    if period == "month":
        return (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    if period == "year":
        return start.replace(year=start.year + 1)
    raise ValueError(f"period {period!r} has no next period")


def previous_period(start: dt.date, period: str) -> dt.date:
    if period == "day":
        return start - dt.timedelta(days=1)
    if period == "week":
        return start - dt.timedelta(days=7)
    if period == "month":
        return (start - dt.timedelta(days=1)).replace(day=1)
    if period == "year":
        return start.replace(year=start.year - 1)
    raise ValueError(f"period {period!r} has no previous period")


def local_midnight(day: dt.date) -> dt.datetime:
    """The aware moment a local date begins (DST-safe: zoneinfo resolves the wall time)."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=business_zone())


def period_end(start: dt.date, period: str) -> dt.datetime | None:
    """The aware moment the period ends (exclusive); None for all time."""
    if period == "none":
        return None
    return local_midnight(next_period(start, period))
