import pytest
from django.db.models import Sum

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
