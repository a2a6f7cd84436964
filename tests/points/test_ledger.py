import pytest
from django.db import IntegrityError, connection, transaction

from points.models import Account, LedgerEntry
from points.services import (
    IdempotencyConflict,
    InsufficientPoints,
    ledger_append,
    ledger_reverse,
    points_adjust,
    points_redeem,
    points_refund,
)
from tests.points.factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db


def _balance(user) -> int:
    return Account.objects.get(user=user).balance


def _award(user, amount, key):
    return ledger_append(user_id=user.pk, amount=amount, kind=LedgerEntry.Kind.AWARD, idempotency_key=key)


def test_ledger_append_creates_the_account_on_demand_and_records_before_and_after():
    user = UserFactory()
    assert not Account.objects.filter(user=user).exists()

    first = _award(user, 30, "a1")
    second = _award(user, 12, "a2")

    assert (first.balance_before, first.amount, first.balance_after) == (0, 30, 30)
    assert (second.balance_before, second.amount, second.balance_after) == (30, 12, 42)
    assert _balance(user) == 42
    assert len(first.serial_number) == 32
    assert first.serial_number != second.serial_number


def test_ledger_append_by_account_id():
    user = UserFactory()
    account = Account.objects.create(user=user, balance=0)
    entry = ledger_append(account_id=account.pk, amount=5, kind="award", idempotency_key="k")
    assert entry.account_id == account.pk
    assert _balance(user) == 5


def test_ledger_append_needs_exactly_one_owner():
    with pytest.raises(TypeError):
        ledger_append(amount=5, kind="award", idempotency_key="k")
    assert LedgerEntry.objects.count() == 0


@pytest.mark.parametrize(("amount", "kind", "key"), [(0, "award", "k"), (5, "bonus", "k"), (5, "award", "")])
def test_ledger_append_refuses_bad_input_and_writes_nothing(amount, kind, key):
    user = UserFactory()
    with pytest.raises(ValueError):
        ledger_append(user_id=user.pk, amount=amount, kind=kind, idempotency_key=key)
    assert LedgerEntry.objects.count() == 0


def test_same_idempotency_key_returns_the_first_entry_and_changes_nothing():
    user = UserFactory()
    first = _award(user, 10, "event-1")

    again = _award(user, 10, "event-1")

    assert again.pk == first.pk
    assert LedgerEntry.objects.count() == 1
    assert _balance(user) == 10


def test_reusing_a_key_for_another_movement_is_refused():
    user = UserFactory()
    _award(user, 10, "event-1")
    with pytest.raises(IdempotencyConflict):
        _award(user, 11, "event-1")
    with pytest.raises(IdempotencyConflict):
        _award(UserFactory(), 10, "event-1")
    assert LedgerEntry.objects.count() == 1
    assert _balance(user) == 10


def test_points_redeem_debits_the_balance():
    user = UserFactory()
    _award(user, 100, "a")

    entry = points_redeem(user_id=user.pk, amount=40, idempotency_key="order:A1:redeem", order_number="A1")

    assert (entry.kind, entry.amount, entry.balance_before, entry.balance_after) == ("redeem", -40, 100, 60)
    assert entry.order_number == "A1"
    assert _balance(user) == 60


def test_points_redeem_short_balance_raises_and_writes_nothing():
    user = UserFactory()
    _award(user, 30, "a")

    with pytest.raises(InsufficientPoints) as caught:
        points_redeem(user_id=user.pk, amount=31, idempotency_key="order:A1:redeem")

    assert (caught.value.balance, caught.value.requested) == (30, 31)
    assert LedgerEntry.objects.count() == 1
    assert _balance(user) == 30


def test_points_redeem_without_an_account_is_short():
    user = UserFactory()
    with pytest.raises(InsufficientPoints) as caught:
        points_redeem(user_id=user.pk, amount=1, idempotency_key="r")
    assert caught.value.balance == 0
    assert LedgerEntry.objects.count() == 0


@pytest.mark.parametrize("amount", [0, -5, 2.5, True])
def test_points_redeem_and_refund_need_a_positive_whole_amount(amount):
    user = UserFactory()
    _award(user, 10, "a")
    with pytest.raises(ValueError):
        points_redeem(user_id=user.pk, amount=amount, idempotency_key="r")
    with pytest.raises(ValueError):
        points_refund(user_id=user.pk, amount=amount, idempotency_key="f")
    assert LedgerEntry.objects.count() == 1
    assert _balance(user) == 10


def test_points_refund_credits_and_is_idempotent():
    user = UserFactory()
    _award(user, 50, "a")
    points_redeem(user_id=user.pk, amount=50, idempotency_key="order:A1:redeem", order_number="A1")

    refund = points_refund(user_id=user.pk, amount=50, idempotency_key="order:A1:refund", order_number="A1")
    again = points_refund(user_id=user.pk, amount=50, idempotency_key="order:A1:refund", order_number="A1")

    assert again.pk == refund.pk
    assert (refund.kind, refund.amount, refund.balance_before, refund.balance_after) == ("refund", 50, 0, 50)
    assert _balance(user) == 50


def test_points_adjust_records_the_staff_member_and_reason():
    user, staff = UserFactory(), StaffFactory()
    entry = points_adjust(user_id=user.pk, amount=25, reason="  goodwill  ", staff_user=staff)
    assert (entry.kind, entry.amount, entry.reason) == ("adjust", 25, "goodwill")
    assert entry.created_by_id == staff.pk
    down = points_adjust(user_id=user.pk, amount=-5, reason="typo", staff_user=staff)
    assert down.balance_after == 20
    assert entry.idempotency_key != down.idempotency_key


def test_points_adjust_with_a_key_is_idempotent():
    user = UserFactory()
    first = points_adjust(user_id=user.pk, amount=5, reason="r", idempotency_key="adj-1")
    again = points_adjust(user_id=user.pk, amount=5, reason="r", idempotency_key="adj-1")
    assert again.pk == first.pk
    assert _balance(user) == 5


@pytest.mark.parametrize(("amount", "reason"), [(5, ""), (5, "   "), (0, "why")])
def test_points_adjust_refuses_without_reason_or_amount(amount, reason):
    user = UserFactory()
    with pytest.raises(ValueError):
        points_adjust(user_id=user.pk, amount=amount, reason=reason)
    assert LedgerEntry.objects.count() == 0


def test_points_adjust_cannot_take_the_balance_below_zero():
    user = UserFactory()
    _award(user, 3, "a")
    with pytest.raises(InsufficientPoints):
        points_adjust(user_id=user.pk, amount=-4, reason="too much")
    assert _balance(user) == 3


def test_ledger_reverse_cancels_an_entry_once():
    user, staff = UserFactory(), StaffFactory()
    award = _award(user, 20, "a")

    reversal = ledger_reverse(entry_id=award.pk, reason="awarded by mistake", staff_user=staff)
    again = ledger_reverse(entry_id=award.pk, reason="twice")

    assert again.pk == reversal.pk
    assert (reversal.kind, reversal.amount, reversal.reverses_id) == ("reversal", -20, award.pk)
    assert reversal.created_by_id == staff.pk
    assert _balance(user) == 0
    assert LedgerEntry.objects.count() == 2


def test_ledger_reverse_of_a_redeem_gives_the_points_back():
    user = UserFactory()
    _award(user, 20, "a")
    redeem = points_redeem(user_id=user.pk, amount=15, idempotency_key="r", order_number="A9")
    reversal = ledger_reverse(entry_id=redeem.pk, reason="order cancelled")
    assert (reversal.amount, reversal.order_number, _balance(user)) == (15, "A9", 20)


def test_ledger_reverse_refuses_a_reversal_and_an_unaffordable_one():
    user = UserFactory()
    award = _award(user, 20, "a")
    points_redeem(user_id=user.pk, amount=15, idempotency_key="r")
    with pytest.raises(InsufficientPoints):
        ledger_reverse(entry_id=award.pk, reason="spent already")
    other = _award(user, 1, "b")
    reversal = ledger_reverse(entry_id=other.pk, reason="x")
    with pytest.raises(ValueError):
        ledger_reverse(entry_id=reversal.pk, reason="undo the undo")
    with pytest.raises(ValueError):
        ledger_reverse(entry_id=other.pk, reason="")
    assert _balance(user) == 5
    assert LedgerEntry.objects.count() == 4


def test_services_nest_in_the_callers_transaction():
    user = UserFactory()
    _award(user, 10, "a")

    with pytest.raises(RuntimeError), transaction.atomic():
        points_redeem(user_id=user.pk, amount=10, idempotency_key="order:A1:redeem")
        raise RuntimeError("order placement failed after the redeem")

    assert _balance(user) == 10
    assert not LedgerEntry.objects.filter(idempotency_key="order:A1:redeem").exists()


def test_ledger_append_query_count(django_assert_num_queries):
    user = UserFactory()
    _award(user, 1, "warm")
    # lock, key lookup, insert, balance update, plus the savepoint pair of the nested atomic
    with django_assert_num_queries(6):
        _award(user, 1, "next")


def test_database_refuses_an_entry_whose_after_is_not_before_plus_amount():
    account = Account.objects.create(user=UserFactory())
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            serial_number="x",
            account=account,
            amount=5,
            balance_before=0,
            balance_after=6,
            kind="award",
            idempotency_key="bad",
        )
    assert LedgerEntry.objects.count() == 0


def test_database_refuses_a_negative_balance():
    account = Account.objects.create(user=UserFactory())
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            serial_number="x",
            account=account,
            amount=-5,
            balance_before=0,
            balance_after=-5,
            kind="redeem",
            idempotency_key="bad",
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(pk=account.pk).update(balance=-1)
    assert Account.objects.get(pk=account.pk).balance == 0


@pytest.mark.postgres
def test_postgresql_refuses_update_of_a_ledger_row():
    if connection.vendor != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's; SQLite relies on the services")
    entry = _award(UserFactory(), 10, "a")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).update(reason="rewritten")
    assert LedgerEntry.objects.get(pk=entry.pk).reason == ""


@pytest.mark.postgres
def test_postgresql_refuses_delete_of_a_ledger_row():
    if connection.vendor != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's; SQLite relies on the services")
    entry = _award(UserFactory(), 10, "a")
    refused = pytest.raises(IntegrityError, match="append-only")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM points_ledgerentry WHERE id = %s", [entry.pk])
    assert LedgerEntry.objects.filter(pk=entry.pk).exists()


def test_a_staff_adjustment_and_reversal_are_audited_by_the_service_itself(django_user_model):
    from django.contrib.admin.models import LogEntry

    from backoffice.auditing import audit_message

    user = UserFactory()
    staff = django_user_model.objects.create_user(username="clerk", password="x", is_staff=True)

    entry = points_adjust(user_id=user.pk, amount=25, reason="goodwill", staff_user=staff)
    reversal = ledger_reverse(entry_id=entry.pk, reason="typo", staff_user=staff)

    lines = [(e.user, e.object_id, audit_message(e)) for e in LogEntry.objects.order_by("id")]
    assert lines == [
        (staff, str(entry.account_id), f"Adjusted by +25 ({entry.serial_number}): goodwill"),
        (staff, str(reversal.pk), f"Reversal of {entry.serial_number}: typo"),
    ]
