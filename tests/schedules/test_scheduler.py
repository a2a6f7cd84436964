"""The scheduler in-process, against the test database and Redis: lock, dispatch, change detection, outages."""

import pytest
from django.db import OperationalError
from django.utils import timezone
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from backoffice.celery import app as celery_app
from backoffice.schedules import scheduler as scheduler_module
from backoffice.schedules.scheduler import PortalScheduler
from tests.schedules.helpers import make_schedule

pytestmark = pytest.mark.django_db


class RecordingScheduler(PortalScheduler):
    """Records what it sends instead of publishing, so the tests count dispatches exactly."""

    def __init__(self, *args, **kwargs):
        self.sent = []
        super().__init__(*args, **kwargs)

    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        self.sent.append(entry.name)


_created: list[RecordingScheduler] = []


@pytest.fixture(autouse=True)
def _forget_schedulers_at_teardown():
    """django-celery-beat registers a sync at interpreter exit for every scheduler; for the test's schedulers
    that would run after the test database is gone (and log errors after pytest's summary), so cancel it."""
    yield
    while _created:
        _created.pop()._finalize.cancel()


def new_scheduler() -> RecordingScheduler:
    scheduler = RecordingScheduler(app=celery_app)
    _created.append(scheduler)
    return scheduler


def drain(scheduler: PortalScheduler, ticks: int = 50) -> None:
    for _ in range(ticks):
        if scheduler.tick() > 0:
            return


def test_only_the_lock_holder_sends_and_the_other_takes_over_after_release(redis_client):
    make_schedule("due", ran_ago=7200)
    first, second = new_scheduler(), new_scheduler()  # both have read "due" as two hours overdue

    drain(first)
    assert second.tick() == scheduler_module.LOCK_RETRY_S
    assert (first.sent, second.sent) == (["due"], [])

    first.close()  # shutdown writes last_run_at back and releases the lock
    second._next_lock_try = 0
    drain(second)

    assert second._is_leader
    assert second.sent == []  # it took over the run time the first one wrote: no second send of that slot
    assert second.schedule["due"].total_run_count == 1


def test_a_standby_sends_nothing_while_the_holder_renews(redis_client, monkeypatch):
    make_schedule("due", ran_ago=7200)
    holder, standby = new_scheduler(), new_scheduler()
    drain(holder)
    for _ in range(5):
        standby._next_lock_try = 0
        standby.tick()
        holder._renewed_at = 0  # force a renewal on the next tick
        holder.tick()
    assert standby.sent == []
    assert holder._is_leader and not standby._is_leader


def test_an_expired_lock_is_taken_over_and_the_old_holder_stops(redis_client, settings):
    make_schedule("due", ran_ago=7200)
    holder, standby = new_scheduler(), new_scheduler()
    drain(holder)
    redis_client.delete(settings.BEAT_LOCK_KEY)  # as if the holder died and its TTL ran out

    standby._next_lock_try = 0
    drain(standby)
    holder._renewed_at = 0
    holder.tick()

    assert standby._is_leader
    assert not holder._is_leader
    assert holder.sent == ["due"]


def test_every_due_entry_is_sent_in_one_burst_and_run_times_are_saved_in_bulk(redis_client):
    for number in range(30):
        make_schedule(f"due {number:02}", ran_ago=7200)
    make_schedule("not due", ran_ago=0)
    scheduler = new_scheduler()

    drain(scheduler)
    scheduler.sync()

    assert sorted(scheduler.sent) == [f"due {number:02}" for number in range(30)]
    fresh = PeriodicTask.objects.filter(name__startswith="due", total_run_count=1).count()
    assert fresh == 30
    assert PeriodicTask.objects.get(name="not due").total_run_count == 0


def test_a_change_is_picked_up_on_the_next_poll(redis_client):
    task = make_schedule("slow", ran_ago=0)
    scheduler = new_scheduler()
    drain(scheduler)
    assert scheduler.sent == []

    task.last_run_at = timezone.now() - timezone.timedelta(hours=2)
    task.save()  # the signal marks the change
    scheduler._next_change_check = 0
    drain(scheduler)

    assert scheduler.sent == ["slow"]


def test_a_bulk_update_with_update_changed_is_noticed(redis_client):
    make_schedule("a", every=1, ran_ago=10)
    scheduler = new_scheduler()
    drain(scheduler)
    assert scheduler.sent == ["a"]

    PeriodicTask.objects.filter(name="a").update(enabled=False)
    PeriodicTasks.update_changed()
    scheduler._next_change_check = 0
    scheduler.tick()

    assert "a" not in scheduler.schedule


def test_beat_keeps_dispatching_through_a_database_outage_and_saves_run_times_after(redis_client, monkeypatch):
    make_schedule("due", every=60, ran_ago=7200)
    scheduler = new_scheduler()
    drain(scheduler)
    scheduler.sync()
    assert scheduler.sent == ["due"]

    def database_down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(PeriodicTasks, "last_change", classmethod(database_down))
    monkeypatch.setattr(scheduler_module, "_save_run_times", database_down)
    monkeypatch.setattr(PeriodicTask.objects, "enabled", database_down)
    entry = scheduler.schedule["due"]
    entry.last_run_at = entry.model.last_run_at = timezone.now() - timezone.timedelta(hours=1)
    scheduler._heap = None
    scheduler._next_change_check = 0
    scheduler._next_full_reload = 0  # a reload attempt fails too, and is survived
    drain(scheduler)
    scheduler.sync()
    assert scheduler.sent == ["due", "due"]
    assert "due" in scheduler._dirty  # kept in memory until the database answers

    monkeypatch.undo()
    scheduler.sync()
    assert scheduler._dirty == set()
    assert PeriodicTask.objects.get(name="due").total_run_count == 2


def test_beat_starts_while_the_database_is_down_and_loads_once_it_answers(redis_client, monkeypatch):
    make_schedule("due", ran_ago=7200)

    def database_down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(PeriodicTask.objects, "enabled", database_down)
    scheduler = new_scheduler()
    drain(scheduler)
    assert scheduler.sent == []

    monkeypatch.undo()
    scheduler._next_change_check = 0
    drain(scheduler)
    assert scheduler.sent == ["due"]


def test_shutdown_releases_the_lock(redis_client, settings):
    scheduler = new_scheduler()
    scheduler.tick()
    assert redis_client.get(settings.BEAT_LOCK_KEY) is not None

    scheduler.close()

    assert redis_client.get(settings.BEAT_LOCK_KEY) is None


def test_an_edit_is_applied_without_reading_every_schedule_again(redis_client, django_assert_max_num_queries):
    for number in range(20):
        task = make_schedule(f"s{number:02}", ran_ago=0)  # saved long ago, one an hour apart
        PeriodicTask.objects.filter(pk=task.pk).update(
            date_changed=timezone.now() - timezone.timedelta(hours=20 - number)
        )
    scheduler = new_scheduler()
    drain(scheduler)
    before = {name: entry for name, entry in scheduler.schedule.items()}

    edited = PeriodicTask.objects.get(name="s03")
    edited.last_run_at = timezone.now() - timezone.timedelta(hours=2)
    edited.save()
    scheduler._next_change_check = 0
    with django_assert_max_num_queries(6):  # marker, changed rows, enabled ids, and the sync: never 20 rows
        drain(scheduler)

    assert scheduler.sent == ["s03"]
    reread = [name for name in before if scheduler.schedule[name] is not before[name]]
    assert sorted(reread) == ["s03", "s19"]  # the edited one, and the latest saved before (read again within the slack)


def test_a_rename_a_delete_and_a_bulk_enable_are_all_applied(redis_client):
    for name in ("keep", "rename me", "delete me"):
        make_schedule(name, ran_ago=0)
    dormant = make_schedule("dormant", ran_ago=7200)
    PeriodicTask.objects.filter(pk=dormant.pk).update(enabled=False)
    scheduler = new_scheduler()
    drain(scheduler)
    assert sorted(scheduler.schedule) == ["delete me", "keep", "rename me"]

    renamed = PeriodicTask.objects.get(name="rename me")
    renamed.name = "renamed"
    renamed.save()
    PeriodicTask.objects.filter(name="delete me").delete()
    PeriodicTask.objects.filter(pk=dormant.pk).update(
        enabled=True, last_run_at=timezone.now() - timezone.timedelta(hours=2)
    )
    PeriodicTasks.update_changed()
    scheduler._next_change_check = 0
    drain(scheduler)

    assert sorted(scheduler.schedule) == ["dormant", "keep", "renamed"]
    assert scheduler.sent == ["dormant"]


def test_a_bulk_change_of_other_fields_falls_back_to_a_full_reload(redis_client):
    make_schedule("quiet", ran_ago=0)
    scheduler = new_scheduler()
    drain(scheduler)

    PeriodicTask.objects.filter(name="quiet").update(kwargs='{"message": "changed"}')
    PeriodicTasks.update_changed()
    scheduler._next_change_check = 0
    drain(scheduler)

    assert scheduler.schedule["quiet"].kwargs == {"message": "changed"}


# -- a disabled schedule starts afresh (issue 12) ---------------------------------------------------------


def test_a_schedule_disabled_just_after_it_ran_does_not_fire_at_once_when_enabled_later(redis_client, operator):
    import time_machine

    from backoffice.schedules.services import periodic_tasks_set_enabled

    task = make_schedule("hourly", every=3600, ran_ago=7200)
    scheduler = new_scheduler()
    drain(scheduler)
    assert scheduler.sent == ["hourly"]  # its new run time is still only in beat's memory

    periodic_tasks_set_enabled(user=operator, ids=[task.pk], enabled=False)
    scheduler.sync()  # beat's batched write-back, a second later
    task.refresh_from_db()
    assert task.last_run_at is None  # the disable's reset stands

    with time_machine.travel(timezone.now() + timezone.timedelta(days=2), tick=True):
        periodic_tasks_set_enabled(user=operator, ids=[task.pk], enabled=True)
        later = new_scheduler()
        drain(later)
        assert later.sent == []  # starts afresh: first run one period after it was enabled again


def test_run_times_are_still_written_back_onto_a_schedule_edited_after_it_ran(redis_client):
    task = make_schedule("hourly", every=3600, ran_ago=7200)
    scheduler = new_scheduler()
    drain(scheduler)
    sent_at = scheduler.schedule["hourly"].last_run_at

    task.refresh_from_db()
    task.description = "edited in the admin a moment after the run"
    task.save()
    scheduler.sync()

    task.refresh_from_db()
    assert (task.last_run_at, task.total_run_count) == (sent_at, 1)


# -- one broken schedule, and what the heartbeat means (issue 12) ------------------------------------------


def test_a_schedule_that_cannot_be_built_is_left_out_and_the_others_are_sent(redis_client, settings, caplog):
    from django_celery_beat.models import IntervalSchedule

    make_schedule("good", ran_ago=7200)
    broken = make_schedule("broken", every=7, ran_ago=7200)
    IntervalSchedule.objects.filter(pk=broken.interval_id).update(period="fortnights")  # past the validators

    scheduler = new_scheduler()
    drain(scheduler)

    assert scheduler.sent == ["good"]
    assert "broken" in caplog.text
    assert redis_client.get(settings.BEAT_HEARTBEAT_KEY) is not None


def test_an_edit_that_breaks_one_schedule_leaves_beat_running_with_the_others(redis_client):
    from django_celery_beat.models import IntervalSchedule

    make_schedule("good", every=60, ran_ago=0)
    broken = make_schedule("broken", every=7, ran_ago=0)
    scheduler = new_scheduler()
    drain(scheduler)

    IntervalSchedule.objects.filter(pk=broken.interval_id).update(period="fortnights")
    broken.description = "touched"
    broken.save()  # beat applies the change, building the entry anew
    scheduler._next_change_check = 0
    drain(scheduler)

    assert sorted(scheduler.schedule) == ["good"]


class _Uncomputable:
    """A schedule whose next run cannot be computed."""

    def now(self):
        return timezone.now()

    def is_due(self, last_run_at):
        raise RuntimeError("no next run")

    def remaining_estimate(self, last_run_at):
        raise RuntimeError("no next run")


def test_a_schedule_whose_next_run_cannot_be_computed_neither_stops_beat_nor_the_others(redis_client, settings):
    make_schedule("good", every=1, ran_ago=7200)
    make_schedule("broken", ran_ago=7200)
    scheduler = new_scheduler()
    scheduler.schedule["broken"].schedule = _Uncomputable()

    drain(scheduler)
    scheduler.schedule["good"].last_run_at = scheduler.schedule["good"].model.last_run_at = (
        timezone.now() - timezone.timedelta(hours=1)
    )
    scheduler._heap = None  # rebuilt with the broken entry in it again
    redis_client.delete(settings.BEAT_HEARTBEAT_KEY)
    scheduler._last_heartbeat = 0
    drain(scheduler)

    assert scheduler.sent == ["good", "good"]
    assert redis_client.get(settings.BEAT_HEARTBEAT_KEY) is not None


def test_the_heartbeat_says_beat_is_fine_only_while_the_lock_holder_sends(redis_client, settings, monkeypatch):
    make_schedule("due", ran_ago=7200)
    holder, standby = new_scheduler(), new_scheduler()
    drain(holder)
    assert redis_client.get(settings.BEAT_HEARTBEAT_KEY) is not None

    redis_client.delete(settings.BEAT_HEARTBEAT_KEY)
    standby._next_lock_try = standby._last_heartbeat = 0
    standby.tick()
    assert redis_client.get(settings.BEAT_HEARTBEAT_KEY) is None  # a standby alone sends nothing

    def broker_down(*args, **kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr(holder, "apply_async", broker_down)
    entry = holder.schedule["due"]
    entry.last_run_at = entry.model.last_run_at = timezone.now() - timezone.timedelta(hours=2)
    holder._heap = None
    holder._last_heartbeat = 0
    holder.tick()
    assert redis_client.get(settings.BEAT_HEARTBEAT_KEY) is None  # it ticks, but nothing goes out


# -- once, even across a failover (issue 17) -------------------------------------------------------------


def test_a_takeover_reads_the_sends_recorded_in_redis_not_only_the_late_database(redis_client, settings):
    for number in range(5):
        make_schedule(f"minutely {number}", every=60, ran_ago=7200)
    holder, standby = new_scheduler(), new_scheduler()
    drain(holder)
    assert len(holder.sent) == 5
    assert PeriodicTask.objects.filter(total_run_count=0).count() == 5  # not written back yet

    redis_client.delete(settings.BEAT_LOCK_KEY)  # the holder dies before its write-back; its TTL runs out
    standby._next_lock_try = 0
    drain(standby)

    assert standby._is_leader
    assert standby.sent == []
    assert {entry.total_run_count for entry in standby.schedule.values()} == {1}


def test_a_holder_that_lost_the_lock_sends_nothing_more(redis_client, settings):
    make_schedule("due", every=60, ran_ago=7200)
    holder = new_scheduler()
    holder.tick()  # takes the lock
    holder.sent.clear()
    redis_client.set(settings.BEAT_LOCK_KEY, "another beat's token")  # paused past its TTL, then taken over

    holder.schedule["due"].last_run_at = timezone.now() - timezone.timedelta(hours=2)
    holder.populate_heap()
    holder._dispatch_due()

    assert holder.sent == []
    assert not holder._is_leader


def test_every_kind_of_schedule_is_loaded_and_sent_when_due(redis_client):
    from django_celery_beat.models import ClockedSchedule, CrontabSchedule

    two_hours_ago = timezone.now() - timezone.timedelta(hours=2)
    every_minute = CrontabSchedule.objects.create(minute="*", hour="*", timezone="UTC")
    PeriodicTask.objects.create(name="crontab", task="backoffice.ping", crontab=every_minute, last_run_at=two_hours_ago)
    clocked = ClockedSchedule.objects.create(clocked_time=two_hours_ago)
    PeriodicTask.objects.create(name="clocked", task="backoffice.ping", clocked=clocked, one_off=True)
    make_schedule("not yet", every=60, ran_ago=7200, start_time=timezone.now() + timezone.timedelta(hours=1))
    make_schedule("with kwargs", every=60, ran_ago=7200, kwargs={"message": "hi"}, queue="points")
    scheduler = new_scheduler()

    drain(scheduler)

    assert sorted(scheduler.sent) == ["clocked", "crontab", "with kwargs"]
    entry = scheduler.schedule["with kwargs"]
    assert (entry.kwargs, entry.options["queue"], entry.options["headers"]) == (
        {"message": "hi"},
        "points",
        {"periodic_task_name": "with kwargs"},
    )
