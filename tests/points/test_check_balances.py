import pytest
from django.core.management import CommandError, call_command

from points.models import Account
from points.services import ledger_append
from points.tasks import balances_check_task
from tests.points.factories import UserFactory

pytestmark = pytest.mark.django_db


def _two_accounts_one_drifted():
    good, bad = UserFactory(), UserFactory()
    ledger_append(user_id=good.pk, amount=5, kind="award", idempotency_key="g")
    ledger_append(user_id=bad.pk, amount=7, kind="award", idempotency_key="b")
    Account.objects.filter(user=bad).update(balance=9)  # drift behind the ledger's back
    return good, bad


def test_all_balances_match(capsys):
    ledger_append(user_id=UserFactory().pk, amount=5, kind="award", idempotency_key="g")
    call_command("points_check_balances")
    assert "All points balances match" in capsys.readouterr().out
    assert balances_check_task() == 0


def test_a_mismatch_exits_1_and_changes_nothing(capsys):
    _good, bad = _two_accounts_one_drifted()
    with pytest.raises(CommandError) as caught:
        call_command("points_check_balances")
    assert caught.value.returncode == 1
    assert f"(user {bad.pk}): balance 9, ledger sum 7, last balance_after 7" in capsys.readouterr().out
    assert Account.objects.get(user=bad).balance == 9
    assert balances_check_task() == 1


def test_fix_asks_first_and_does_nothing_without_yes(monkeypatch):
    _good, bad = _two_accounts_one_drifted()
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    with pytest.raises(CommandError, match="Nothing changed"):
        call_command("points_check_balances", "--fix")
    assert Account.objects.get(user=bad).balance == 9


def test_fix_with_confirmation_repairs_from_the_ledger(monkeypatch, capsys):
    good, bad = _two_accounts_one_drifted()
    monkeypatch.setattr("builtins.input", lambda prompt: "yes")
    call_command("points_check_balances", "--fix")
    assert "fixed 1 account(s)" in capsys.readouterr().out
    assert Account.objects.get(user=bad).balance == 7
    assert Account.objects.get(user=good).balance == 5
    call_command("points_check_balances")


def test_fix_audits_each_repair_under_the_system_user_or_the_one_named(monkeypatch, django_user_model):
    from django.contrib.admin.models import LogEntry

    from backoffice.auditing import audit_message

    _good, bad = _two_accounts_one_drifted()
    call_command("points_check_balances", "--fix", "--no-input")
    account = Account.objects.get(user=bad)
    [entry] = LogEntry.objects.all()
    assert (entry.user.username, entry.object_id) == ("system", str(account.pk))
    assert audit_message(entry) == "Balance repaired from 9 to 7, the sum of its ledger."

    staff = django_user_model.objects.create_user(username="ops", password="x")
    Account.objects.filter(pk=account.pk).update(balance=1)
    call_command("points_check_balances", "--fix", "--no-input", "--by", "ops")
    assert LogEntry.objects.order_by("-id").first().user == staff
