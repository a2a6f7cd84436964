import datetime as dt

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.urls import reverse

from backoffice.auditing import audit_message
from points import matching
from points.models import Account, Action, LedgerEntry, Rule, RuleProgress
from points.services import ledger_append
from tests.points.factories import ActionFactory, RuleFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db


def _staff(*perms):
    staff = StaffFactory()
    for name in perms:
        app_label, codename = name.split(".")
        staff.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return staff


@pytest.fixture
def operator_client(client):
    client.force_login(
        _staff(
            "points.view_action",
            "points.change_action",
            "points.add_action",
            "points.view_rule",
            "points.add_rule",
            "points.change_rule",
            "points.simulate_rule",
            "points.view_account",
            "points.adjust_account",
            "points.view_ledgerentry",
            "points.import_rule",
            "points.export_rule",
        )
    )
    return client


def test_every_points_admin_page_renders_for_a_superuser(admin_client):
    user = UserFactory()
    rule = RuleFactory()
    entry = ledger_append(user_id=user.pk, amount=5, kind="award", idempotency_key="k", extra={"rule": rule})
    for name in ("action", "rule", "account", "ledgerentry", "ruleprogress", "actionrecord", "pendingevent"):
        assert admin_client.get(reverse(f"admin:points_{name}_changelist")).status_code == 200, name
    assert admin_client.get(reverse("admin:points_ledgerentry_changelist"), {"q": "k"}).status_code == 200
    assert admin_client.get(reverse("admin:points_ledgerentry_change", args=[entry.pk])).status_code == 200
    assert admin_client.get(reverse("admin:points_account_change", args=[entry.account_id])).status_code == 200
    assert admin_client.get(reverse("admin:points_rule_change", args=[rule.pk])).status_code == 200
    assert admin_client.get(reverse("admin:points_action_change", args=[rule.action_id])).status_code == 200


def test_history_is_read_only_even_for_a_superuser(admin_client):
    entry = ledger_append(user_id=UserFactory().pk, amount=5, kind="award", idempotency_key="k")
    assert admin_client.get(reverse("admin:points_ledgerentry_add")).status_code == 403
    response = admin_client.post(reverse("admin:points_ledgerentry_delete", args=[entry.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert LedgerEntry.objects.filter(pk=entry.pk).exists()


def test_an_invalid_pattern_is_a_form_error(operator_client):
    response = operator_client.post(
        reverse("admin:points_action_add"),
        {
            "code": "bad",
            "name": "Bad",
            "method": "POST",
            "path_pattern": "^/api/(unclosed/$",
            "status": "draft",
            "success_field": "",
            "success_value": "",
        },
    )
    assert response.status_code == 200
    assert "Not a valid regular expression" in response.content.decode()
    assert not Action.all_objects.filter(code="bad").exists()


def test_rule_form_explains_end_before_start(operator_client):
    action = ActionFactory()
    response = operator_client.post(
        reverse("admin:points_rule_add"),
        {
            "name": "Backwards",
            "action": action.pk,
            "status": "draft",
            "points": 1,
            "kind": "every",
            "period": "day",
            "required_count": 1,
            "awardee_cap_scope": "period",
            "starts_at_0": "2026-03-02",
            "starts_at_1": "00:00",
            "ends_at_0": "2026-03-01",
            "ends_at_1": "00:00",
        },
    )
    assert response.status_code == 200
    assert "The end must come after the start." in response.content.decode()
    assert Rule.all_objects.count() == 0


def test_test_url_helper_shows_the_match_and_business_id(operator_client):
    ActionFactory(code="like", method="POST", path_pattern=r"^/api/posts/(?P<business_id>\d+)/like/$")
    url = reverse("admin:points_action_test_url")
    data = operator_client.get(
        url, {"method": "POST", "path": "/api/posts/12/like/", "pattern": r"^/api/posts/(?P<business_id>\d+)/like/$"}
    ).json()
    assert data["pattern"] == {"valid": True, "matches": True, "business_id": "12"}
    assert data["active"] == [{"code": "like", "business_id": "12"}]
    bad = operator_client.get(url, {"method": "POST", "path": "/x", "pattern": "("}).json()
    assert bad["pattern"]["valid"] is False
    assert operator_client.get(url, {"method": "BREW", "path": "/x"}).status_code == 400


def test_status_actions_validate_and_are_logged(operator_client):
    good = RuleFactory(status="draft")
    bad = RuleFactory(status="draft", kind="every", required_count=3)  # saved around validation
    response = operator_client.post(
        reverse("admin:points_rule_changelist"),
        {
            "action": "activate",
            "_selected_action": [good.pk, bad.pk],
        },
        follow=True,
    )
    assert response.status_code == 200
    good.refresh_from_db()
    bad.refresh_from_db()
    assert (good.status, bad.status) == ("active", "draft")
    logged = LogEntry.objects.get(object_id=str(good.pk), content_type__model="rule")
    assert (logged.action_flag, audit_message(logged)) == (CHANGE, "Status set to active.")
    assert not LogEntry.objects.filter(object_id=str(bad.pk), content_type__model="rule").exists()


def test_retiring_an_action_stops_it_matching(operator_client):
    action = ActionFactory(code="like", method="POST", path_pattern=r"^/like/$")
    assert matching.index.match("POST", "/like/")
    operator_client.post(
        reverse("admin:points_action_changelist"),
        {
            "action": "retire",
            "_selected_action": [action.pk],
        },
    )
    assert matching.index.match("POST", "/like/") == []
    assert "Status set to retired." in [audit_message(e) for e in LogEntry.objects.filter(object_id=str(action.pk))]


def test_adjustment_needs_the_permission(client):
    account = Account.objects.create(user=UserFactory())
    client.force_login(_staff("points.view_account"))
    url = reverse("admin:points_account_adjust", args=[account.pk])
    assert client.post(url, {"amount": 5, "reason": "x"}).status_code == 403
    assert LedgerEntry.objects.count() == 0


def test_adjustment_requires_a_reason_and_logs_the_entry(operator_client):
    account = Account.objects.create(user=UserFactory())
    url = reverse("admin:points_account_adjust", args=[account.pk])
    response = operator_client.post(url, {"amount": 5, "reason": "  "})
    assert response.status_code == 200
    assert "reason" in response.context["form"].errors
    assert LedgerEntry.objects.count() == 0

    too_much = operator_client.post(url, {"amount": -1, "reason": "oops"})
    assert "cannot go below zero" in too_much.content.decode()

    response = operator_client.post(url, {"amount": 25, "reason": "goodwill"})
    assert response.status_code == 302
    entry = LedgerEntry.objects.get()
    assert (entry.kind, entry.amount, entry.reason, entry.created_by.is_staff) == ("adjust", 25, "goodwill", True)
    log = LogEntry.objects.get(content_type__model="account", object_id=str(account.pk))
    assert audit_message(log) == f"Adjusted by +25 ({entry.serial_number}): goodwill"


def test_reversal_from_the_admin_is_a_new_entry_and_logged(operator_client):
    entry = ledger_append(user_id=UserFactory().pk, amount=8, kind="award", idempotency_key="k")
    url = reverse("admin:points_ledgerentry_reverse", args=[entry.pk])
    response = operator_client.post(url, {"reason": "wrong rule"})
    assert response.status_code == 302
    reversal = LedgerEntry.objects.get(reverses=entry)
    assert (reversal.amount, Account.objects.get().balance) == (-8, 0)
    log = LogEntry.objects.get(content_type__model="ledgerentry", object_id=str(reversal.pk))
    assert log.action_flag == ADDITION


def test_simulate_replays_recorded_actions_without_writing(operator_client, settings):
    import time_machine

    from tests.points.helpers import apply_all, capture, local

    settings.TIME_ZONE = "Asia/Shanghai"
    action = ActionFactory()
    users = UserFactory.create_batch(3)
    now = local(2026, 3, 10, 18, 0)
    for i, user in enumerate(users):
        for hours in (1, 2):
            capture(user, action, now - dt.timedelta(hours=hours + i))  # all on the local day of March 10th
    capture(users[0], action, now - dt.timedelta(days=3))  # outside the window
    apply_all()
    draft = RuleFactory(action=action, status="draft", points=4, per_user_cap=1, awardee_cap=2)
    before = (LedgerEntry.objects.count(), RuleProgress.objects.count())

    with time_machine.travel(now, tick=False):
        response = operator_client.get(reverse("admin:points_rule_simulate", args=[draft.pk]), {"days": 2})

    assert response.status_code == 200
    result = response.context["result"]
    assert (result["records"], result["awards"], result["points"], result["users"]) == (6, 2, 8, 2)
    assert (LedgerEntry.objects.count(), RuleProgress.objects.count()) == before == (0, 0)
    assert (
        operator_client.get(reverse("admin:points_rule_simulate", args=[draft.pk]), {"days": 0}).context["result"]
        is None
    )


def test_rules_import_dry_run_preview_writes_nothing(operator_client):
    ActionFactory(code="checkin")
    csv = (
        "id,name,action,points,kind,period,required_count,allow_repeat_business_id,awardee_cap,"
        "awardee_cap_scope,per_user_cap,starts_at,ends_at,status\n"
        ",Imported,checkin,3,every,day,1,1,,period,1,,,draft\n"
    )
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = operator_client.post(
        reverse("admin:points_rule_import"),
        {
            "import_file": SimpleUploadedFile("rules.csv", csv.encode()),
            "format": "0",
            "resource": "0",
        },
    )
    assert response.status_code == 200
    assert "Imported" in response.content.decode()
    assert "confirm" in response.content.decode().lower()
    assert Rule.all_objects.count() == 0


def test_ledger_and_rule_exports_from_the_admin_neutralise_formulas(rf, admin_user):
    from django.contrib import admin

    request = rf.get("/")
    request.user = admin_user
    ledger_append(user_id=UserFactory().pk, amount=5, kind="award", idempotency_key="k")
    user = UserFactory(username="=HYPERLINK(1)")
    ledger_append(user_id=user.pk, amount=3, kind="adjust", idempotency_key="=cmd|calc", reason="+SUM(A1)")
    RuleFactory(name="@SUM(1+1)")

    ledger_resource = admin.site._registry[LedgerEntry].get_export_resource_classes(request)[0]
    rule_resource = admin.site._registry[Rule].get_export_resource_classes(request)[0]
    assert rule_resource().export(Rule.objects.all()).dict[0]["name"] == "'@SUM(1+1)"
    dataset = ledger_resource().export(LedgerEntry.objects.order_by("id"))
    row = dataset.dict[-1]
    assert (row["user"], row["idempotency_key"], row["reason"]) == ("'=HYPERLINK(1)", "'=cmd|calc", "'+SUM(A1)")
    assert row["amount"] in (3, "3")  # a number, not neutralised
