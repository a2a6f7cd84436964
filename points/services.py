"""Every state change of the points engine. Each service runs in `transaction.atomic()` without `durable`, so
it nests inside a caller's transaction (orders place an order and redeem its points in one)."""

import uuid
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_noop

from backoffice.auditing import ADDITION, audit_record
from points import periods
from points.ledger import (  # the ledger's append path; re-exported, callers have always found it here
    Append,
    IdempotencyConflict,
    InsufficientPoints,
    accounts_lock,
    ledger_append,
    ledger_append_many,
)
from points.models import Account, CheckIn, LedgerEntry

__all__ = [
    "Append",
    "BalanceMismatch",
    "IdempotencyConflict",
    "InsufficientPoints",
    "PointsRefund",
    "actions_set_status",
    "actions_soft_delete",
    "balances_check",
    "balances_fix",
    "checkin_create",
    "ledger_append",
    "ledger_append_many",
    "ledger_reverse",
    "points_adjust",
    "points_redeem",
    "points_refund",
    "points_refund_many",
    "rules_set_status",
    "rules_soft_delete",
]


def _positive(amount: int) -> int:
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise ValueError(f"amount must be a positive whole number of points, not {amount!r}")
    return amount


def points_redeem(
    *, user_id: int, amount: int, idempotency_key: str, order_number: str = "", reason: str = ""
) -> LedgerEntry:
    """Spend points (a negative `redeem` entry); InsufficientPoints when the balance is short."""
    return ledger_append(
        user_id=user_id,
        amount=-_positive(amount),
        kind=LedgerEntry.Kind.REDEEM,
        idempotency_key=idempotency_key,
        order_number=order_number,
        reason=reason,
    )


def points_refund(
    *, user_id: int, amount: int, idempotency_key: str, order_number: str = "", reason: str = ""
) -> LedgerEntry:
    """Give redeemed points back (a positive `refund` entry)."""
    return ledger_append(
        user_id=user_id,
        amount=_positive(amount),
        kind=LedgerEntry.Kind.REFUND,
        idempotency_key=idempotency_key,
        order_number=order_number,
        reason=reason,
    )


@dataclass(frozen=True)
class PointsRefund:
    user_id: int
    amount: int
    idempotency_key: str
    order_number: str = ""


def points_refund_many(*, refunds: list[PointsRefund], reason: str) -> int:
    """points_refund for many at once (the order sweeper's batches), through the ledger's batch append: one
    `refund` entry per new key, in a handful of statements whatever the batch's size. Returns how many entries
    were appended."""
    return ledger_append_many(
        [
            Append(
                user_id=refund.user_id,
                amount=_positive(refund.amount),
                kind=LedgerEntry.Kind.REFUND.value,
                idempotency_key=refund.idempotency_key,
                order_number=refund.order_number,
                reason=reason,
            )
            for refund in refunds
        ]
    )


def points_adjust(
    *, user_id: int, amount: int, reason: str, staff_user=None, idempotency_key: str | None = None
) -> LedgerEntry:
    """A manual correction, either sign; the reason is required. A staff member's is audited."""
    if not isinstance(amount, int) or isinstance(amount, bool) or amount == 0:
        raise ValueError(f"an adjustment moves a non-zero whole number of points, not {amount!r}")
    if not (reason or "").strip():
        raise ValueError("an adjustment needs a reason")
    with transaction.atomic():
        entry = ledger_append(
            user_id=user_id,
            amount=amount,
            kind=LedgerEntry.Kind.ADJUST,
            idempotency_key=idempotency_key or f"adjust:{uuid.uuid4().hex}",
            reason=reason.strip(),
            created_by=staff_user,
        )
        if staff_user is not None:
            audit_record(
                actor=staff_user,
                objects=[entry.account],
                message=gettext_noop("Adjusted by %(amount)+d (%(serial)s): %(reason)s"),
                params={"amount": amount, "serial": entry.serial_number, "reason": entry.reason},
            )
    return entry


def ledger_reverse(*, entry_id: int, reason: str, staff_user=None) -> LedgerEntry:
    """Cancel an entry with an opposite one linked to it. Reversing twice returns the first reversal."""
    if not (reason or "").strip():
        raise ValueError("a reversal needs a reason")
    with transaction.atomic():
        entry = LedgerEntry.objects.get(pk=entry_id)
        if entry.kind == LedgerEntry.Kind.REVERSAL:
            raise ValueError("a reversal cannot itself be reversed; adjust instead")
        reversal = ledger_append(
            account_id=entry.account_id,
            amount=-entry.amount,
            kind=LedgerEntry.Kind.REVERSAL,
            idempotency_key=f"reversal:{entry.pk}",
            order_number=entry.order_number,
            reason=reason.strip(),
            created_by=staff_user,
            reverses=entry,
        )
        if staff_user is not None:
            audit_record(
                actor=staff_user,
                objects=[reversal],
                action=ADDITION,
                message=gettext_noop("Reversal of %(serial)s: %(reason)s"),
                params={"serial": entry.serial_number, "reason": reversal.reason},
            )
        return reversal


@dataclass(frozen=True)
class BalanceMismatch:
    account_id: int
    user_id: int
    balance: int
    ledger_sum: int
    last_balance_after: int | None


def balances_check() -> list[BalanceMismatch]:
    """Accounts whose stored balance differs from the sum of their entries or from their last balance_after."""
    entries = LedgerEntry.objects.filter(account=OuterRef("pk"))
    accounts = Account.objects.annotate(
        ledger_sum=Coalesce(
            Subquery(entries.order_by().values("account").annotate(total=Sum("amount")).values("total")), Value(0)
        ),
        last_after=Subquery(entries.order_by("-id").values("balance_after")[:1]),
    )
    mismatched = accounts.exclude(balance=F("ledger_sum")) | accounts.exclude(last_after__isnull=True).exclude(
        balance=F("last_after")
    )
    return [
        BalanceMismatch(
            account_id=a.pk,
            user_id=a.user_id,
            balance=a.balance,
            ledger_sum=a.ledger_sum,
            last_balance_after=a.last_after,
        )
        for a in mismatched.order_by("pk")
    ]


def balances_fix(*, account_ids: list[int], actor) -> int:
    """Set each account's balance to the sum of its ledger (the ledger is the truth); returns accounts fixed.
    Each repair is audited under `actor`.

    An account whose own chain is inconsistent (the sum differs from the last balance_after) is left alone:
    that needs a person, not a command.
    """
    fixed = 0
    for account_id in account_ids:
        with transaction.atomic():
            (account,) = accounts_lock(account_ids=[account_id])
            entries = LedgerEntry.objects.filter(account=account)
            total = entries.aggregate(total=Sum("amount"))["total"] or 0
            last = entries.order_by("-id").values_list("balance_after", flat=True).first()
            if total < 0 or (last is not None and last != total) or account.balance == total:
                continue
            Account.objects.filter(pk=account.pk).update(balance=total, updated_at=timezone.now())
            audit_record(
                actor=actor,
                objects=[Account.objects.select_related("user").get(pk=account.pk)],  # the locked row's model
                message=gettext_noop("Balance repaired from %(before)d to %(after)d, the sum of its ledger."),
                params={"before": account.balance, "after": total},
            )
            fixed += 1
    return fixed


def checkin_create(*, user_id: int, now=None) -> tuple[CheckIn, bool]:
    """The demo host site's daily check-in: one per user per local day; (row, created)."""
    day = (now or timezone.now()).astimezone(periods.business_zone()).date()
    with transaction.atomic():
        return CheckIn.objects.get_or_create(user_id=user_id, day=day)


STATUS_SET = gettext_noop("Status set to %(status)s.")
SOFT_DELETED = gettext_noop("Soft-deleted.")


def actions_set_status(*, action_ids: list[int], status: str, actor=None) -> int:
    """Activate, retire or draft actions (each validated first); the web processes reload within seconds."""
    from points.matching import actions_changed
    from points.models import Action, Status

    if status not in Status.values:
        raise ValueError(f"unknown status {status!r}")
    changed = 0
    with transaction.atomic():
        for action in Action.objects.select_for_update().filter(pk__in=action_ids):
            action.status = status
            action.full_clean()
            action.save(update_fields=["status", "updated_at"])
            if actor is not None:
                audit_record(actor=actor, objects=[action], message=STATUS_SET, params={"status": status})
            changed += 1
    actions_changed()
    return changed


def actions_soft_delete(*, action_ids: list[int], actor=None) -> int:
    """Soft-delete actions: they stop matching at once and stay for the records that point at them."""
    from points.matching import actions_changed
    from points.models import Action

    changed = _soft_delete(Action, ids=action_ids, actor=actor)
    actions_changed()
    return changed


def rules_set_status(*, rule_ids: list[int], status: str, actor=None) -> list:
    """Change rules' status; a rule that does not validate is not activated. Returns the rules changed."""
    from django.core.exceptions import ValidationError

    from points.models import Rule, Status

    if status not in Status.values:
        raise ValueError(f"unknown status {status!r}")
    changed = []
    with transaction.atomic():
        for rule in Rule.objects.select_for_update().filter(pk__in=rule_ids):
            rule.status = status
            try:
                rule.full_clean()
            except ValidationError:
                if status == Status.ACTIVE:
                    continue
            rule.save(update_fields=["status", "updated_at"])
            if actor is not None:
                audit_record(actor=actor, objects=[rule], message=STATUS_SET, params={"status": status})
            changed.append(rule)
    return changed


def rules_soft_delete(*, rule_ids: list[int], actor=None) -> int:
    from points.models import Rule

    return _soft_delete(Rule, ids=rule_ids, actor=actor)


def _soft_delete(model, *, ids: list[int], actor) -> int:
    """Retire and mark deleted the live rows among `ids` (actions or rules), audited under `actor` if given."""
    from points.models import Status

    with transaction.atomic():
        live = model.all_objects.filter(pk__in=ids, deleted_at__isnull=True)
        if actor is not None:
            audit_record(actor=actor, objects=live, message=SOFT_DELETED)
        now = timezone.now()
        return live.update(deleted_at=now, status=Status.RETIRED, updated_at=now)
