"""A date hierarchy for big tables: the stock one runs SELECT DISTINCT over every row of the chosen period
(a scan of the table on a million rows); this one asks only for MIN and MAX (two index probes) and offers
every year, month or day between them."""

import calendar
import datetime

from django import template
from django.contrib.admin.templatetags.base import InclusionAdminNode
from django.db.models import Max, Min
from django.utils import formats, timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _

register = template.Library()


def _bounds(cl, field_name):
    found = cl.queryset.aggregate(first=Min(field_name), last=Max(field_name))
    if not (found["first"] and found["last"]):
        return None, None
    return timezone.localtime(found["first"]), timezone.localtime(found["last"])


def fast_date_hierarchy(cl):
    field_name = cl.date_hierarchy
    year_field, month_field, day_field = (f"{field_name}__{part}" for part in ("year", "month", "day"))
    year, month, day = (cl.params.get(name) for name in (year_field, month_field, day_field))

    def link(filters):
        return cl.get_query_string(filters, [f"{field_name}__"])

    if year and month and day:
        chosen = datetime.date(int(year), int(month), int(day))
        return {
            "show": True,
            "back": {
                "link": link({year_field: year, month_field: month}),
                "title": capfirst(formats.date_format(chosen, "YEAR_MONTH_FORMAT")),
            },
            "choices": [{"title": capfirst(formats.date_format(chosen, "MONTH_DAY_FORMAT"))}],
        }
    first, last = _bounds(cl, field_name)
    if first is None:
        return {"show": False}
    if not year and first.year == last.year:
        year = first.year
        if first.month == last.month:
            month = first.month
    if year and month:
        year, month = int(year), int(month)
        days = [
            datetime.date(year, month, number)
            for number in range(1, calendar.monthrange(year, month)[1] + 1)
            if first.date() <= datetime.date(year, month, number) <= last.date()
        ]
        return {
            "show": True,
            "back": {"link": link({year_field: year}), "title": str(year)},
            "choices": [
                {
                    "link": link({year_field: year, month_field: month, day_field: d.day}),
                    "title": capfirst(formats.date_format(d, "MONTH_DAY_FORMAT")),
                }
                for d in days
            ],
        }
    if year:
        year = int(year)
        months = [datetime.date(year, number, 1) for number in range(first.month, last.month + 1)]
        return {
            "show": True,
            "back": {"link": link({}), "title": _("All dates")},
            "choices": [
                {
                    "link": link({year_field: year, month_field: m.month}),
                    "title": capfirst(formats.date_format(m, "YEAR_MONTH_FORMAT")),
                }
                for m in months
            ],
        }
    return {
        "show": True,
        "back": None,
        "choices": [
            {"link": link({year_field: str(number)}), "title": str(number)}
            for number in range(first.year, last.year + 1)
        ],
    }


@register.tag(name="fast_date_hierarchy")
def fast_date_hierarchy_tag(parser, token):
    return InclusionAdminNode(
        parser, token, func=fast_date_hierarchy, template_name="date_hierarchy.html", takes_context=False
    )
