import datetime as dt

import pytest
import time_machine

from points.services import points_redeem
from tests.points.factories import RuleFactory, UserFactory
from tests.points.helpers import apply_all, capture, local

pytestmark = pytest.mark.django_db


def test_me_shows_balance_progress_of_active_rules_and_recent_entries(client, checkin_action, settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    every = RuleFactory(action=checkin_action, name="Check-in", points=1, per_user_cap=1)
    streak = RuleFactory(action=checkin_action, name="Streak", points=2, kind="streak", required_count=10)
    weekly = RuleFactory(action=checkin_action, name="Weekly", points=3, kind="count", period="week", required_count=3)
    RuleFactory(action=checkin_action, name="Draft", status="draft")
    user = UserFactory()
    for day in (1, 2, 3):  # Sunday March 1st, then Monday and Tuesday of the next week
        capture(user, checkin_action, local(2026, 3, day, 9))
    apply_all()
    points_redeem(user_id=user.pk, amount=2, idempotency_key="order:X:redeem", order_number="X")
    client.force_login(user)

    with time_machine.travel(local(2026, 3, 3, 20), tick=False):
        data = client.get("/api/points/me/").json()

    assert data["balance"] == 1
    progress = {row["name"]: row for row in data["rules"]}
    assert set(progress) == {"Check-in", "Streak", "Weekly"}
    assert (progress["Check-in"]["count"], progress["Check-in"]["rule"]) == (1, every.pk)
    assert (progress["Streak"]["count"], progress["Streak"]["rule"]) == (3, streak.pk)
    assert progress["Weekly"] == {
        "rule": weekly.pk,
        "name": "Weekly",
        "kind": "count",
        "period": "week",
        "points": 3,
        "required_count": 3,
        "count": 2,
        "period_start": "2026-03-02",
        "period_end": local(2026, 3, 9).isoformat(),
    }
    assert [(e["kind"], e["amount"], e["balance_after"]) for e in data["entries"]] == [
        ("redeem", -2, 1),
        ("award", 1, 3),
        ("award", 1, 2),
        ("award", 1, 1),
    ]


def test_me_shows_a_broken_streak_as_zero(client, checkin_action, settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    RuleFactory(action=checkin_action, name="Streak", points=2, kind="streak", required_count=10)
    user = UserFactory()
    capture(user, checkin_action, local(2026, 3, 1, 9))
    apply_all()
    client.force_login(user)
    with time_machine.travel(local(2026, 3, 2, 20), tick=False):
        assert client.get("/api/points/me/").json()["rules"][0]["count"] == 1  # still alive today
    with time_machine.travel(local(2026, 3, 3, 0, 1), tick=False):
        assert client.get("/api/points/me/").json()["rules"][0]["count"] == 0  # the 2nd was missed


def test_me_needs_a_signed_in_user_and_get(client):
    assert client.get("/api/points/me/").status_code == 401
    client.force_login(UserFactory())
    assert client.post("/api/points/me/").status_code == 405
    assert client.get("/api/points/me/").json() == {"balance": 0, "rules": [], "entries": []}


def test_checkin_is_once_per_local_day(client, settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    client.force_login(UserFactory())
    with time_machine.travel(dt.datetime(2026, 3, 1, 15, 59, tzinfo=dt.UTC), tick=False):
        assert client.post("/api/points/checkin/").json() == {"code": 0, "day": "2026-03-01", "message": "Checked in."}
        assert client.post("/api/points/checkin/").json()["code"] == 1
    with time_machine.travel(dt.datetime(2026, 3, 1, 16, 0, tzinfo=dt.UTC), tick=False):
        assert client.post("/api/points/checkin/").json()["day"] == "2026-03-02"
