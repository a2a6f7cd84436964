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
