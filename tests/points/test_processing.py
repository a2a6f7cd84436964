"""The rule kinds at their period edges, in a time zone that is not UTC (Asia/Shanghai, UTC+8)."""

import datetime as dt

import pytest

from points.models import ActionRecord, LedgerEntry, PendingEvent, Rule, RuleAwardees, RuleProgress
from points.processing import PARTITIONS, events_process_batch
from tests.points.factories import ActionFactory, RuleFactory, UserFactory
from tests.points.helpers import apply_all, assert_ledger_invariants, balance, capture, local

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def shanghai(settings):
    settings.TIME_ZONE = "Asia/Shanghai"


def test_every_completion_with_a_per_user_cap_per_day_at_the_local_midnight_edge():
    rule = RuleFactory(points=1, kind="every", period="day", per_user_cap=1)
    user = UserFactory()
    capture(user, rule.action, local(2026, 3, 1, 8, 0))
    capture(user, rule.action, local(2026, 3, 1, 23, 59, 59))  # same local day: capped
    capture(user, rule.action, local(2026, 3, 2, 0, 0, 0))  # 16:00 UTC on March 1st: the next local day

    assert apply_all() == 3

    assert balance(user) == 2
    rows = RuleProgress.objects.filter(rule=rule).order_by("period_start")
    assert [(r.period_start, r.count, r.awards) for r in rows] == [
        (dt.date(2026, 3, 1), 2, 1),
        (dt.date(2026, 3, 2), 1, 1),
    ]
    assert rows[0].deadline == local(2026, 3, 2)
    assert PendingEvent.objects.count() == 0
    assert_ledger_invariants()


def test_every_completion_without_cap_awards_each_time_and_links_the_entry():
    rule = RuleFactory(points=3, kind="every", period="none")
    user = UserFactory()
    capture(user, rule.action, local(2026, 3, 1, 8, 0), business_id="7")
    capture(user, rule.action, local(2026, 3, 1, 9, 0), business_id="7")
    apply_all()

    entries = list(LedgerEntry.objects.order_by("id"))
    assert [(e.kind, e.amount, e.balance_after) for e in entries] == [("award", 3, 3), ("award", 3, 6)]
    record = ActionRecord.objects.get(pk=entries[0].source_id)
    assert (entries[0].rule_id, record.business_id, entries[0].reason) == (rule.pk, "7", rule.name)
    assert entries[0].idempotency_key == f"award:{record.event_id}:{rule.pk}"


def test_n_in_a_week_counts_from_local_monday():
    rule = RuleFactory(points=5, kind="count", period="week", required_count=3)
    user = UserFactory()
    # 2026-03-02 is a Monday. Sunday 23:59 local belongs to the week before.
    capture(user, rule.action, local(2026, 3, 1, 23, 59))
    capture(user, rule.action, local(2026, 3, 2, 0, 0))
    capture(user, rule.action, local(2026, 3, 4, 12, 0))
    apply_all()
    assert balance(user) == 0

    capture(user, rule.action, local(2026, 3, 8, 23, 59))  # the same week's last minute: third of the week
    apply_all()
    assert balance(user) == 5
    row = RuleProgress.objects.get(rule=rule, period_start=dt.date(2026, 3, 2))
    assert (row.count, row.awards, row.deadline) == (3, 1, local(2026, 3, 9))


def test_n_in_a_month_and_in_a_year_at_their_edges():
    month = RuleFactory(points=2, kind="count", period="month", required_count=2)
    year = RuleFactory(points=7, kind="count", period="year", required_count=2, action=month.action)
    user = UserFactory()
    capture(user, month.action, local(2025, 12, 31, 23, 59))
    capture(user, month.action, local(2026, 1, 1, 0, 0))
    apply_all()
    assert balance(user) == 0

    capture(user, month.action, local(2026, 1, 31, 23, 59))
    apply_all()
    assert balance(user) == 2 + 7
    assert RuleProgress.objects.get(rule=year, period_start=dt.date(2026, 1, 1)).count == 2
    assert set(RuleProgress.objects.filter(rule=month).values_list("period_start", "count")) == {
        (dt.date(2025, 12, 1), 1),
        (dt.date(2026, 1, 1), 2),
    }


def test_n_in_a_period_awards_at_every_multiple_up_to_the_per_user_cap():
    rule = RuleFactory(points=1, kind="count", period="none", required_count=2, per_user_cap=2)
    user = UserFactory()
    for hour in range(7):
        capture(user, rule.action, local(2026, 3, 1, hour))
    apply_all()
    assert balance(user) == 2  # at 2 and 4; 6 is over the per-user cap
    assert RuleProgress.objects.get(rule=rule).count == 7


def test_streak_of_consecutive_local_days():
    rule = RuleFactory(points=2, kind="streak", period="day", required_count=3)
    user = UserFactory()
    capture(user, rule.action, local(2026, 3, 1, 23, 59))
    capture(user, rule.action, local(2026, 3, 2, 0, 1))  # two minutes later, but the next local day
    capture(user, rule.action, local(2026, 3, 2, 18, 0))  # same day again: no change
    apply_all()
    assert balance(user) == 0
    capture(user, rule.action, local(2026, 3, 3, 7, 0))
    apply_all()
    assert balance(user) == 2
    row = RuleProgress.objects.get(rule=rule)
    assert (row.period_start, row.last_period, row.count, row.awards) == (
        dt.date(2026, 3, 1),
        dt.date(2026, 3, 3),
        3,
        1,
    )
    assert row.deadline == local(2026, 3, 5)  # still alive if the user comes back on the 4th


def test_streak_breaks_after_a_missed_period_and_starts_again():
    rule = RuleFactory(points=2, kind="streak", period="day", required_count=2)
    user = UserFactory()
    capture(user, rule.action, local(2026, 3, 1, 12))
    capture(user, rule.action, local(2026, 3, 3, 12))  # the 2nd was missed
    apply_all()
    assert balance(user) == 0
    capture(user, rule.action, local(2026, 3, 4, 12))
    apply_all()
    assert balance(user) == 2
    rows = RuleProgress.objects.filter(rule=rule).order_by("period_start")
    assert list(rows.values_list("period_start", "count")) == [
        (dt.date(2026, 3, 1), 1),
        (dt.date(2026, 3, 3), 2),
    ]


def test_weekly_streak_across_a_year_boundary():
    rule = RuleFactory(points=4, kind="streak", period="week", required_count=2)
    user = UserFactory()
    capture(user, rule.action, local(2025, 12, 28, 23, 0))  # Sunday: week of Dec 22
    capture(user, rule.action, local(2025, 12, 29, 0, 0))  # Monday: week of Dec 29
    apply_all()
    assert balance(user) == 4


def test_same_business_id_counts_once_when_repeats_are_off():
    rule = RuleFactory(points=1, kind="every", period="day", allow_repeat_business_id=False)
    other = RuleFactory(points=10, kind="every", period="day", action=rule.action)  # repeats allowed
    user = UserFactory()
    capture(user, rule.action, local(2026, 3, 1, 8), business_id="42")
    capture(user, rule.action, local(2026, 3, 1, 9), business_id="42")
    capture(user, rule.action, local(2026, 3, 1, 10), business_id="43")
    apply_all()
    capture(user, rule.action, local(2026, 3, 2, 10), business_id="42")  # a later batch, another day
    apply_all()
    assert balance(user) == 2 * 1 + 4 * 10
    assert other.pk != rule.pk


def test_awardee_cap_per_local_day_counts_users_and_resets_the_next_day():
    """Exactly `cap` users per day. Within one batch places go in event order; across concurrent batches (user
    partitions on PostgreSQL) in commit order, so the test does not pin who, only how many."""
    rule = RuleFactory(points=5, kind="every", period="day", awardee_cap=2, per_user_cap=1)
    users = UserFactory.create_batch(3)
    capture(users[2], rule.action, local(2026, 3, 1, 10))
    capture(users[0], rule.action, local(2026, 3, 1, 8))
    capture(users[0], rule.action, local(2026, 3, 1, 8, 30))  # same user again: not a second place
    capture(users[1], rule.action, local(2026, 3, 1, 9))
    apply_all()
    balances = [balance(user) for user in users]
    assert sorted(balances) == [0, 5, 5]
    assert RuleAwardees.objects.get(rule=rule, period_start=dt.date(2026, 3, 1)).awardees == 2

    left_out = users[balances.index(0)]
    capture(left_out, rule.action, local(2026, 3, 2, 0, 0))  # a new local day: places again
    apply_all()
    assert balance(left_out) == 5
    assert RuleAwardees.objects.get(rule=rule, period_start=dt.date(2026, 3, 2)).awardees == 1


def test_awardee_places_go_in_event_order_within_a_batch():
    rule = RuleFactory(points=5, kind="every", period="day", awardee_cap=1, per_user_cap=1)
    late, early = UserFactory(), UserFactory()
    capture(late, rule.action, local(2026, 3, 1, 10))
    capture(early, rule.action, local(2026, 3, 1, 8))
    PendingEvent.objects.update(user_id=early.pk)  # one user: one batch whatever the database
    PendingEvent.objects.filter(occurred_at=local(2026, 3, 1, 10)).update(business_id="late")
    apply_all()
    entry = LedgerEntry.objects.get()
    assert entry.source.occurred_at == local(2026, 3, 1, 8)
    assert late.pk != early.pk


def test_overall_awardee_cap_counts_users_not_awards():
    rule = RuleFactory(points=1, kind="every", period="day", awardee_cap=1, awardee_cap_scope="overall")
    first, second = UserFactory(), UserFactory()
    capture(first, rule.action, local(2026, 3, 1, 8))
    capture(second, rule.action, local(2026, 3, 1, 9))
    apply_all()
    # On PostgreSQL the two users may fall in different batch partitions, so which one takes the only place
    # is commit order; what the cap promises is one awardee, who keeps earning.
    day_one = {user.pk: balance(user) for user in (first, second)}
    assert sorted(day_one.values()) == [0, 1]
    capture(first, rule.action, local(2026, 3, 2, 8))
    capture(second, rule.action, local(2026, 3, 2, 9))
    apply_all()
    assert {user.pk: balance(user) for user in (first, second)} == {pk: 2 * won for pk, won in day_one.items()}


def test_window_and_status_decide_which_rules_count():
    action = ActionFactory()
    windowed = RuleFactory(action=action, points=1, starts_at=local(2026, 3, 1), ends_at=local(2026, 3, 2))
    RuleFactory(action=action, points=100, status="draft")
    RuleFactory(action=action, points=1000, status="retired")
    RuleFactory(action=action, points=10000, deleted_at=local(2026, 1, 1))
    user = UserFactory()
    capture(user, action, local(2026, 2, 28, 23, 59))
    capture(user, action, local(2026, 3, 1, 0, 0))
    capture(user, action, local(2026, 3, 1, 23, 59))
    capture(user, action, local(2026, 3, 2, 0, 0))  # the end is exclusive
    apply_all()
    assert balance(user) == 2
    assert set(LedgerEntry.objects.values_list("rule_id", flat=True)) == {windowed.pk}
    assert ActionRecord.objects.count() == 4


def test_same_event_delivered_three_times_has_one_effect():
    rule = RuleFactory(points=3, kind="every", period="none")
    user = UserFactory()
    event = capture(user, rule.action, local(2026, 3, 1, 8))
    event_id = event.event_id
    apply_all()
    for _ in range(2):  # the outbox row comes back (a relay and a redelivered task racing, say)
        PendingEvent.objects.create(
            event_id=event_id, user_id=user.pk, action_id=rule.action.pk, occurred_at=local(2026, 3, 1, 8)
        )
        assert apply_all() == 1
    assert balance(user) == 3
    assert ActionRecord.objects.filter(event_id=event_id).count() == 1
    assert LedgerEntry.objects.count() == 1
    assert PendingEvent.objects.count() == 0


def test_events_of_a_deleted_user_or_action_are_dropped_without_blocking_the_batch():
    rule = RuleFactory(points=1, period="none")
    user = UserFactory()
    PendingEvent.objects.create(
        event_id="00000000-0000-0000-0000-000000000001",
        user_id=999999,
        action_id=rule.action.pk,
        occurred_at=local(2026, 3, 1),
    )
    PendingEvent.objects.create(
        event_id="00000000-0000-0000-0000-000000000002",
        user_id=user.pk,
        action_id=999999,
        occurred_at=local(2026, 3, 1),
    )
    capture(user, rule.action, local(2026, 3, 1, 8))
    assert apply_all() == 3
    assert balance(user) == 1
    assert ActionRecord.objects.count() == 1


def test_seed_worked_example_one_point_per_checkin_and_two_more_at_ten_in_a_row():
    action = ActionFactory(code="checkin", path_pattern=r"^/api/points/checkin/$")
    RuleFactory(action=action, name="Daily check-in", points=1, kind="every", period="day", per_user_cap=1)
    RuleFactory(action=action, name="Ten days in a row", points=2, kind="streak", period="day", required_count=10)
    user = UserFactory()
    for day in range(1, 11):
        capture(user, action, local(2026, 3, day, 9))
        apply_all()
        assert balance(user) == day + (2 if day == 10 else 0)
    assert [e.amount for e in LedgerEntry.objects.order_by("id")][-2:] == [1, 2]
    assert_ledger_invariants()


def test_a_batch_takes_a_bounded_number_of_statements(django_assert_max_num_queries):
    action = ActionFactory()
    RuleFactory(action=action, points=1, kind="every", period="day", awardee_cap=1000)
    RuleFactory(action=action, points=1, kind="streak", period="day", required_count=2)
    RuleFactory(action=action, points=1, kind="count", period="week", required_count=2, allow_repeat_business_id=False)
    users = UserFactory.create_batch(20)
    for i in range(200):
        capture(users[i % 20], action, local(2026, 3, 1 + i % 5, 9, i % 60), business_id=str(i % 7))
    applied = 0
    while True:
        # ~20 statements whatever the size (SQLite splits a bulk insert every ~50 rows of a wide table;
        # PostgreSQL may try each user partition's lock once)
        with django_assert_max_num_queries(30 + PARTITIONS):
            batch = events_process_batch(limit=500)
        if not batch:
            break
        applied += batch
    assert applied == 200
    assert_ledger_invariants()


def test_batch_size_limits_a_batch_and_the_rest_waits():
    rule = RuleFactory(points=1, period="none")
    user = UserFactory()
    for minute in range(5):
        capture(user, rule.action, local(2026, 3, 1, 8, minute))
    assert events_process_batch(limit=3) == 3
    assert PendingEvent.objects.count() == 2
    assert events_process_batch(limit=3) == 2
    assert events_process_batch(limit=3) == 0
    assert balance(user) == 5


def test_rule_validation_explains_itself():
    from django.core.exceptions import ValidationError

    action = ActionFactory()
    cases = [
        (dict(starts_at=local(2026, 3, 2), ends_at=local(2026, 3, 1)), "ends_at"),
        (dict(kind="every", required_count=3), "required_count"),
        (dict(kind="streak", period="none", required_count=3), "period"),
        (dict(kind="streak", period="day", required_count=3, per_user_cap=1), "per_user_cap"),
        (dict(awardee_cap=0), "awardee_cap"),
        (dict(per_user_cap=0), "per_user_cap"),
        (dict(period="none", awardee_cap=5, awardee_cap_scope="period"), "awardee_cap_scope"),
    ]
    for fields, field in cases:
        rule = Rule(name="r", action=action, points=1, **fields)
        with pytest.raises(ValidationError) as caught:
            rule.full_clean()
        assert field in caught.value.message_dict, (fields, caught.value.message_dict)
    assert Rule.objects.count() == 0
