"""A Hypothesis state machine over award / redeem / adjust / reverse / replay: every invariant holds after
every step (balance == sum == last balance_after, chain unbroken, never negative, no duplicate key)."""

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from points.capture import event_capture
from points.models import Account, LedgerEntry, PendingEvent
from points.processing import events_process_batch
from points.services import InsufficientPoints, ledger_append, ledger_reverse, points_adjust, points_redeem
from tests.points.factories import RuleFactory, UserFactory
from tests.points.helpers import assert_ledger_invariants

pytestmark = pytest.mark.django_db

amounts = st.integers(min_value=1, max_value=500)


class LedgerMachine(RuleBasedStateMachine):
    @initialize()
    def users(self):
        self.users = UserFactory.create_batch(2)
        self.rule = RuleFactory(points=7, kind="every", period="none")
        self.expected = {user.pk: 0 for user in self.users}
        self.calls = []  # (service, kwargs, entry id) for replays
        self.counter = 0

    def _key(self) -> str:
        self.counter += 1
        return f"hyp-{id(self)}-{self.counter}"

    def _user(self, index: int):
        return self.users[index % len(self.users)]

    @rule(index=st.integers(0, 1), amount=amounts)
    def award(self, index, amount):
        user = self._user(index)
        kwargs = dict(user_id=user.pk, amount=amount, kind="award", idempotency_key=self._key())
        entry = ledger_append(**kwargs)
        self.expected[user.pk] += amount
        self.calls.append((ledger_append, kwargs, entry.pk))

    @rule(index=st.integers(0, 1), deliveries=st.integers(1, 3))
    def award_through_an_event(self, index, deliveries):
        """A captured event, delivered one to three times, applied by the batch: one award of the rule."""
        user = self._user(index)
        event = event_capture(user_id=user.pk, action_id=self.rule.action_id)
        events_process_batch()
        for _ in range(deliveries - 1):
            PendingEvent.objects.create(
                event_id=event.event_id, user_id=user.pk, action_id=self.rule.action_id, occurred_at=event.occurred_at
            )
            events_process_batch()
        self.expected[user.pk] += self.rule.points

    @rule(index=st.integers(0, 1), amount=amounts)
    def redeem(self, index, amount):
        user = self._user(index)
        kwargs = dict(user_id=user.pk, amount=amount, idempotency_key=self._key(), order_number="H1")
        if amount > self.expected[user.pk]:
            count = LedgerEntry.objects.count()
            with pytest.raises(InsufficientPoints):
                points_redeem(**kwargs)
            assert LedgerEntry.objects.count() == count
            return
        entry = points_redeem(**kwargs)
        self.expected[user.pk] -= amount
        self.calls.append((points_redeem, kwargs, entry.pk))

    @rule(index=st.integers(0, 1), amount=st.integers(-300, 300).filter(bool))
    def adjust(self, index, amount):
        user = self._user(index)
        kwargs = dict(user_id=user.pk, amount=amount, reason="hypothesis", idempotency_key=self._key())
        if self.expected[user.pk] + amount < 0:
            with pytest.raises(InsufficientPoints):
                points_adjust(**kwargs)
            return
        entry = points_adjust(**kwargs)
        self.expected[user.pk] += amount
        self.calls.append((points_adjust, kwargs, entry.pk))

    @precondition(lambda self: self.calls)
    @rule(pick=st.integers(0, 10_000))
    def reverse(self, pick):
        mine = LedgerEntry.objects.filter(account__user__in=self.users).exclude(kind="reversal").order_by("id")
        entry = mine[pick % mine.count()]
        user_id = entry.account.user_id
        already = LedgerEntry.objects.filter(reverses=entry).exists()
        if not already and self.expected[user_id] - entry.amount < 0:
            with pytest.raises(InsufficientPoints):
                ledger_reverse(entry_id=entry.pk, reason="hypothesis")
            return
        reversal = ledger_reverse(entry_id=entry.pk, reason="hypothesis")
        assert reversal.reverses_id == entry.pk
        if not already:
            self.expected[user_id] -= entry.amount

    @precondition(lambda self: self.calls)
    @rule(pick=st.integers(0, 10_000))
    def replay(self, pick):
        service, kwargs, entry_id = self.calls[pick % len(self.calls)]
        count = LedgerEntry.objects.count()
        assert service(**kwargs).pk == entry_id
        assert LedgerEntry.objects.count() == count

    @invariant()
    def balances_match_the_model_and_the_ledger(self):
        if not hasattr(self, "users"):
            return
        for user in self.users:
            stored = Account.objects.filter(user=user).values_list("balance", flat=True).first() or 0
            assert stored == self.expected[user.pk]
        assert_ledger_invariants(self.users)


LedgerMachine.TestCase.settings = settings(
    max_examples=20, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def test_ledger_state_machine():
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(LedgerMachine, settings=LedgerMachine.TestCase.settings)
