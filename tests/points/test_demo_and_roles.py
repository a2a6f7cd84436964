import io

import pytest
from django.contrib.auth.models import Permission

from backoffice.accounts.roles import ANALYSTS, OPERATORS, OPS, resolve_permissions
from points.demo import DEMO_USERS, demo_install
from points.models import Account, Action, ActionRecord, LedgerEntry, PendingEvent, Rule
from points.roles import ROLE_PERMISSIONS
from points.services import balances_check
from tests.points.helpers import assert_ledger_invariants

pytestmark = pytest.mark.django_db


def test_demo_installs_the_seed_rules_and_history_once():
    out = io.StringIO()
    demo_install(stdout=out)
    assert set(Action.objects.values_list("code", flat=True)) == {"checkin", "post"}
    assert Rule.objects.filter(status="active").count() == 4
    assert Rule.objects.get(kind="streak").required_count == 10
    assert Rule.objects.get(awardee_cap=100).per_user_cap == 1
    assert Account.objects.count() > DEMO_USERS // 2
    assert PendingEvent.objects.count() == 0
    records, entries = ActionRecord.objects.count(), LedgerEntry.objects.count()
    assert records > 1000 and entries > 1000
    assert balances_check() == []

    demo_install(stdout=io.StringIO())  # again: nothing new
    assert (ActionRecord.objects.count(), LedgerEntry.objects.count()) == (records, entries)
    assert_ledger_invariants()


def test_role_permissions_all_exist():
    for role in (OPERATORS, ANALYSTS, OPS):
        assert len(resolve_permissions(set(ROLE_PERMISSIONS[role]))) == len(set(ROLE_PERMISSIONS[role]))
    assert "points.adjust_account" in ROLE_PERMISSIONS[OPERATORS]
    assert "points.adjust_account" not in ROLE_PERMISSIONS[ANALYSTS] + ROLE_PERMISSIONS[OPS]
    assert not any(p.startswith("points.change_") for p in ROLE_PERMISSIONS[ANALYSTS] + ROLE_PERMISSIONS[OPS])
    assert Permission.objects.filter(codename="adjust_account").exists()


def test_the_demo_history_fills_the_dashboards_30_days():
    """The points panel charts 30 days: the demo's history lands on the days it happened, not all on today."""
    from django.utils import timezone

    from points.dashboard import points_panel_figures

    demo_install(stdout=io.StringIO())

    awarded = points_panel_figures(now=timezone.now())["awarded"]
    assert len(awarded) == 30
    assert sum(1 for total in awarded if total) >= 25
    assert awarded[-1] == 0  # today belongs to the live traffic
