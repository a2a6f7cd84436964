import pytest

from points import capture, matching


@pytest.fixture(autouse=True)
def fresh_points_process_state(monkeypatch):
    """Each test starts with no compiled actions and a closed breaker, as a fresh web process would. Wake-ups are
    sent inline, so a test can follow them step by step (test_tasks covers the background thread)."""
    monkeypatch.setattr(capture, "WAKE_IN_BACKGROUND", False)
    matching.index.invalidate()
    capture._broker_down_until = 0.0
    yield
    matching.index.invalidate()
    capture._broker_down_until = 0.0


@pytest.fixture
def checkin_action(db):
    from points.demo import ACTIONS
    from tests.points.factories import ActionFactory

    return ActionFactory(**next(action for action in ACTIONS if action["code"] == "checkin"))  # the demo's own
