"""Demo data for `setup_portal --demo`: a daily digest for Analysts and Ops and a weekly one for Operators, each
with its schedule. Installed once (by name)."""

from django.contrib.auth.models import Group

from backoffice.accounts.roles import ANALYSTS, OPERATORS, OPS
from backoffice.reports.models import Report
from backoffice.reports.services import report_create

DEMO_REPORTS = [
    ("Daily digest", Report.Kind.DAILY, (ANALYSTS, OPS)),
    ("Weekly digest", Report.Kind.WEEKLY, (OPERATORS,)),
]


def demo_install(*, stdout) -> None:
    for name, kind, roles in DEMO_REPORTS:
        if Report.objects.filter(name=name).exists():
            continue
        report_create(name=name, kind=kind, groups=Group.objects.filter(name__in=roles))
        stdout.write(f"report email {name!r} created")
