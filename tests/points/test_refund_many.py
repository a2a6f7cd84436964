import pytest
from django.db.models import Sum

from points.ledger import Append, IdempotencyConflict, InsufficientPoints, ledger_append_many
from points.models import Account, LedgerEntry
from points.services import PointsRefund, balances_check, points_adjust, points_refund, points_refund_many
from tests.points.factories import UserFactory

pytestmark = pytest.mark.django_db


def give_points(user, amount: int) -> None:
    points_adjust(user_id=user.pk, amount=amount, reason="opening balance")


def test_refund_many_appends_one_entry_per_key_and_keeps_every_chain():
    first, second, fresh = UserFactory(), UserFactory(), UserFactory()
    give_points(first, 10)
    give_points(second, 5)
    refunds = [
        PointsRefund(user_id=first.pk, amount=3, idempotency_key="order:A:restore", order_number="A"),
        PointsRefund(user_id=second.pk, amount=4, idempotency_key="order:B:restore", order_number="B"),
        PointsRefund(user_id=first.pk, amount=7, idempotency_key="order:C:restore", order_number="C"),
        PointsRefund(user_id=fresh.pk, amount=2, idempotency_key="order:D:restore", order_number="D"),
        PointsRefund(user_id=first.pk, amount=3, idempotency_key="order:A:restore", order_number="A"),  # repeated key
    ]
    points_refund(user_id=second.pk, amount=4, idempotency_key="order:B:restore", order_number="B")  # done before

    assert points_refund_many(refunds=refunds, reason="expired") == 3
    assert points_refund_many(refunds=refunds, reason="expired") == 0

    assert balances_check() == []
    assert {a.user_id: a.balance for a in Account.objects.all()} == {first.pk: 20, second.pk: 9, fresh.pk: 2}
    chain = list(
        LedgerEntry.objects.filter(account__user=first)
        .order_by("id")
        .values_list("kind", "amount", "balance_before", "balance_after", "order_number")
    )
    assert chain == [("adjust", 10, 0, 10, ""), ("refund", 3, 10, 13, "A"), ("refund", 7, 13, 20, "C")]
    for account in Account.objects.all():
        assert account.entries.aggregate(total=Sum("amount"))["total"] == account.balance


def test_refund_many_refuses_non_positive_amounts():
    user = UserFactory()
    with pytest.raises(ValueError, match="positive"):
        points_refund_many(
            refunds=[PointsRefund(user_id=user.pk, amount=0, idempotency_key="k", order_number="")], reason="x"
        )
    assert LedgerEntry.objects.count() == 0


def test_refund_many_keeps_the_single_appends_idempotency_rule_a_key_reused_for_another_movement_is_refused():
    """One rule for single and batched appends: the same key for another amount is a conflict, not a skip."""
    user = UserFactory()
    points_refund(user_id=user.pk, amount=3, idempotency_key="order:A:restore", order_number="A")
    refunds = [
        PointsRefund(user_id=user.pk, amount=5, idempotency_key="order:B:restore", order_number="B"),
        PointsRefund(user_id=user.pk, amount=4, idempotency_key="order:A:restore", order_number="A"),  # was 3
    ]
    with pytest.raises(IdempotencyConflict):
        points_refund_many(refunds=refunds, reason="expired")

    assert list(LedgerEntry.objects.values_list("idempotency_key", flat=True)) == ["order:A:restore"]
    assert balances_check() == []


def test_a_batch_append_is_all_or_nothing_when_one_debit_cannot_be_covered():
    rich, poor = UserFactory(), UserFactory()
    give_points(rich, 10)
    give_points(poor, 2)
    appends = [
        Append(user_id=rich.pk, amount=-4, kind="redeem", idempotency_key="r1"),
        Append(user_id=poor.pk, amount=-3, kind="redeem", idempotency_key="p1"),
    ]
    with pytest.raises(InsufficientPoints) as caught:
        ledger_append_many(appends)

    assert (caught.value.balance, caught.value.requested) == (2, 3)
    assert LedgerEntry.objects.filter(kind="redeem").count() == 0
    assert {a.user_id: a.balance for a in Account.objects.all()} == {rich.pk: 10, poor.pk: 2}


def test_a_batch_append_links_its_entries_and_chains_them_per_account():
    user, staff = UserFactory(), UserFactory(is_staff=True)
    give_points(user, 1)
    first = LedgerEntry.objects.get()
    appended = ledger_append_many(
        [
            Append(user_id=user.pk, amount=2, kind="adjust", idempotency_key="x1", links={"created_by_id": staff.pk}),
            Append(account_id=first.account_id, amount=-1, kind="reversal", idempotency_key="x2",
                   links={"reverses_id": first.pk}),
            Append(user_id=user.pk, amount=2, kind="adjust", idempotency_key="x1"),  # the same movement again
        ]
    )  # fmt: skip

    assert appended == 2
    chain = list(
        LedgerEntry.objects.order_by("id").values_list("balance_before", "balance_after", "created_by", "reverses")
    )
    assert chain == [(0, 1, None, None), (1, 3, staff.pk, None), (3, 2, None, first.pk)]
    assert balances_check() == []
