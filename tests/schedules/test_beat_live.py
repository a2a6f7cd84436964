"""Real beat processes (and a real worker) against the test database and Redis."""

import re
import signal
from datetime import datetime

import pytest
from django.urls import reverse
from django_celery_beat.models import PeriodicTask
from django_celery_results.models import TaskResult

from tests import processes
from tests.processes import wait_for
from tests.schedules.helpers import form_data, make_schedule

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LOCK_TTL_S = 5  # short in these tests, so a takeover is quick to see
STAMP = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})")


def sends(proc, name: str) -> list[datetime]:
    """When this beat sent the schedule `name`, from its log."""
    found = []
    for line in proc.log().splitlines():
        if f"Sending due task {name} (" in line and (stamp := STAMP.search(line)):
            found.append(datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f"))
    return found


def story(proc) -> str:
    """The beat's lines about the lock, the schedule and sending, for a failing assertion."""
    keep = ("lock", "Sending", "schedule", "database", "Error", "Starting")
    return f"--- {proc.name}\n" + "\n".join(line for line in proc.log().splitlines() if any(k in line for k in keep))


def holds_lock(proc) -> bool:
    return "acquired the beat lock" in proc.log()


def ticks(proc, clock: PeriodicTask, count: int, timeout: float = 30):
    """Wait until the beat has sent the every-second `clock` schedule `count` more times: beat's own sends
    are the clock, so a test waits on events rather than a fixed sleep."""
    start = len(sends(proc, clock.name))
    wait_for(
        lambda: len(sends(proc, clock.name)) >= start + count,
        timeout=timeout,
        message=f"{count} more sends of {clock.name}",
    )


def start_beat(tmp_path, label="beat"):
    return processes.beat(tmp_path, label=label, BEAT_LOCK_TTL_SECONDS=str(LOCK_TTL_S))


@pytest.fixture
def beats(redis_client, tmp_path):
    started = []

    def start(label):
        proc = start_beat(tmp_path, label)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def test_an_interval_edited_in_the_admin_takes_effect_within_5_seconds(live_worker, beats, client, operator):
    task = make_schedule("edited live", every=3600, ran_ago=0)
    clock = make_schedule("clock", every=1, ran_ago=5)
    beat = beats("beat")
    wait_for(lambda: holds_lock(beat), timeout=30, message="beat to take the lock")
    ticks(beat, clock, 1)  # its first load is done and it dispatches: the edited one is not due for an hour
    assert sends(beat, task.name) == []

    client.force_login(operator)
    response = client.post(
        reverse("admin:django_celery_beat_periodictask_change", args=[task.pk]),
        form_data(task, every="1", period="seconds"),
    )
    assert response.status_code == 302
    saved_at = datetime.now()

    wait_for(lambda: sends(beat, task.name), timeout=5, message="beat to send on the new interval")
    assert (sends(beat, task.name)[0] - saved_at).total_seconds() < 5
    wait_for(
        lambda: TaskResult.objects.filter(periodic_task_name=task.name, status="SUCCESS").exists(),
        timeout=15,
        message="the worker to run the scheduled task",
    )


def test_a_bulk_disable_from_the_changelist_stops_dispatch(live_worker, beats, client, operator):
    task = make_schedule("every second", every=1, ran_ago=5)
    clock = make_schedule("clock", every=1, ran_ago=5)
    beat = beats("beat")
    wait_for(lambda: len(sends(beat, task.name)) >= 2, timeout=30, message="beat to send every second")

    client.force_login(operator)
    response = client.post(
        reverse("admin:django_celery_beat_periodictask_changelist"),
        {"action": "disable_selected", "_selected_action": [task.pk]},
    )
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.enabled is False

    ticks(beat, clock, 3)  # change poll (1 s) plus one reload, with room to spare
    settled = len(sends(beat, task.name))
    ticks(beat, clock, 4)
    assert len(sends(beat, task.name)) == settled


def test_two_beats_started_together_send_each_slot_once(live_worker, beats):
    task = make_schedule("one second", every=1, ran_ago=1)
    first, second = beats("beat-a"), beats("beat-b")
    wait_for(lambda: holds_lock(first) or holds_lock(second), timeout=30, message="a beat to take the lock")
    wait_for(
        lambda: len(sends(first, task.name)) + len(sends(second, task.name)) >= 30,
        timeout=60,
        message="thirty slots to be sent",
    )
    stopping_at = datetime.now()
    for proc in (first, second):  # both at once: a handover during a one-by-one stop would be correct too
        proc.signal(signal.SIGTERM)
    first.stop()
    second.stop()

    sent_a, sent_b = sends(first, task.name), sends(second, task.name)
    in_window = sorted([len([t for t in sent if t < stopping_at]) for sent in (sent_a, sent_b)])
    assert in_window[0] == 0, f"both beats sent:\n{story(first)}\n{story(second)}"
    assert in_window[1] >= 30
    times = sorted(sent_a + sent_b)
    assert (times[-1] - times[0]).total_seconds() >= len(times) - 2, "more sends than one-second slots"
    gaps = [(later - earlier).total_seconds() for earlier, later in zip(times, times[1:], strict=False)]
    assert min(gaps) > 0.5, f"a slot was sent twice: {gaps}"
    wait_for(
        lambda: TaskResult.objects.filter(periodic_task_name=task.name).count() == len(times),
        timeout=20,
        message="the worker to run every sent task, each once",
    )


def test_killing_the_lock_holder_lets_the_other_take_over_within_the_ttl(live_worker, beats):
    task = make_schedule("one second", every=1, ran_ago=1)
    first = beats("beat-a")
    wait_for(lambda: sends(first, task.name), timeout=30, message="the first beat to send")
    second = beats("beat-b")
    wait_for(lambda: "beat: Starting" in second.log(), timeout=30, message="the second beat to start")
    ticks(first, task, 2)  # the holder goes on sending while the standby waits
    assert sends(second, task.name) == []
    assert not holds_lock(second)

    first.signal(signal.SIGKILL)  # no shutdown: the lock stays until its TTL runs out
    killed_at = datetime.now()

    wait_for(lambda: sends(second, task.name), timeout=LOCK_TTL_S + 3, message="the standby to take over")
    assert holds_lock(second)
    assert (sends(second, task.name)[0] - killed_at).total_seconds() <= LOCK_TTL_S + 1.5


def queued_for(redis_client, queue: str, name: str) -> int:
    """Messages waiting in `queue` that beat sent for the schedule `name` (no worker consumes them here)."""
    import json

    return sum(
        json.loads(raw)["headers"].get("periodic_task_name") == name for raw in redis_client.lrange(queue, 0, -1)
    )


def test_a_beat_taking_over_from_a_killed_holder_never_resends_its_last_slots(beats, redis_client):
    minutely = [make_schedule(f"minutely {n}", every=60, ran_ago=120) for n in range(10)]  # due at start
    first = beats("beat-a")
    wait_for(
        lambda: all(sends(first, task.name) for task in minutely),
        timeout=30,
        interval=0.02,
        message="the first beat to send the minutely schedules",
    )
    first.signal(signal.SIGKILL)  # just after the send, before its batched write-back of run times

    second = beats("beat-b")
    heartbeat = make_schedule("every second", every=1, ran_ago=5)
    wait_for(
        lambda: len(sends(second, heartbeat.name)) >= 2,  # it holds the lock and has dispatched twice since
        timeout=LOCK_TTL_S + 30,
        message="the second beat to take over and send",
    )

    resent = [task.name for task in minutely if sends(second, task.name)]
    assert resent == [], f"slots sent again after the takeover:\n{story(first)}\n{story(second)}"
    # Recorded before it is published: a kill in between skips that slot, never doubles it.
    assert max(queued_for(redis_client, "default", task.name) for task in minutely) <= 1
