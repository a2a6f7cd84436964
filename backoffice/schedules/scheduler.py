"""Beat's scheduler: django-celery-beat's DatabaseScheduler, made fit for one live beat and large tables.

What it adds to the stock DatabaseScheduler (see ANCHORS.md section 5 for where the stock one spends time):

- **One sender at a time.** A Redis lock with a TTL (redis-py's `Lock`) guards sending. The holder renews it
  while alive and releases it on shutdown; a second beat waits, retrying every LOCK_RETRY_S, and takes over
  once the holder's lock expires (killed holder) or is released. A beat that takes over reloads the schedule
  from the database, where the previous holder kept `last_run_at` current (SYNC_EVERY_S).
- **Fast change detection.** `PeriodicTasks.last_change()` is polled every CHANGE_POLL_S, not on every
  dispatch, and beat never sleeps longer than that, so an edit is live within about a second plus one reload.
- **Fast dispatch.** One tick sends every due entry for up to BURST_S (stock: one entry per tick, each tick
  paying a database round trip and an O(N) schedule comparison), and `last_run_at` is written back with one
  `bulk_update` per batch instead of a SELECT and an UPDATE per entry.
- **Database outages.** Every database call is guarded: beat keeps dispatching from the schedule it holds,
  keeps unsaved run times in memory, and reloads once the database answers again.
- No task-sent events from beat unless BEAT_SEND_SENT_EVENTS (they cost about 30% of a dispatch).
- A heartbeat in Redis for /healthz, written by standby and leader alike (both are alive).
"""

import heapq
import logging
import os
import socket
import time
from datetime import timedelta

import redis
from celery import current_app
from celery.beat import event_t
from celery.signals import beat_init
from celery.utils.time import humanize_seconds
from django.conf import settings
from django.db import DatabaseError, InterfaceError, close_old_connections, connection
from django.db.models import Max
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry

from backoffice.redis_client import redis_client

logger = logging.getLogger(__name__)

HEARTBEAT_EVERY_S = 5.0  # well inside BEAT_STALE_AFTER_SECONDS
CHANGE_POLL_S = 1.0  # how often the change marker is read: edits go live within this plus one reload
LOCK_RETRY_S = 1.0  # a standby beat tries to take the lock this often
BURST_S = 0.25  # longest run of dispatches in one tick, so lock renewal and change polls stay on time
SYNC_EVERY_S = 2.0  # last_run_at written back this often: a beat that takes over repeats at most this much
SYNC_BATCH_SIZE = 1_000  # rows per UPDATE when run times are written back
PUBLISH_BATCH_SIZE = 500  # Redis commands per pipeline round trip during a burst
CHANGE_SLACK = timedelta(seconds=2)  # rows saved this close to the last one seen are read again (idempotent)
FULL_RELOAD_EVERY_S = 300.0  # as the stock scheduler: also catches changes that skipped update_changed()
DB_ERRORS = (DatabaseError, InterfaceError)


@beat_init.connect
def configure_beat_process(sender=None, **kwargs) -> None:
    """In the beat process only (it publishes nothing but beat's sends): task-sent events per the setting."""
    app = sender.app if sender is not None else current_app
    app.conf.task_send_sent_event = settings.BEAT_SEND_SENT_EVENTS
    logger.info("beat: task-sent events %s", "on" if settings.BEAT_SEND_SENT_EVENTS else "off")


def _refresh_connection() -> None:
    """Drop a broken or expired connection so the next query reconnects (after an outage, for instance).

    Never inside a transaction (only tests run beat code in one): closing would end it.
    """
    if not connection.in_atomic_block:
        close_old_connections()


def _save_run_times(model, rows) -> None:
    """Write last_run_at and total_run_count of many rows in one statement.

    PostgreSQL: UPDATE ... FROM (VALUES ...), a join (bulk_update's CASE per row is quadratic in the batch).
    Elsewhere (SQLite, single-process development) bulk_update does.
    """
    if connection.vendor != "postgresql":
        model.objects.bulk_update(rows, ["last_run_at", "total_run_count"])
        return
    table = connection.ops.quote_name(model._meta.db_table)
    values = ", ".join(["(%s, %s::timestamptz, %s)"] * len(rows))
    params = [value for row in rows for value in (row.pk, row.last_run_at, row.total_run_count)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS t SET last_run_at = v.last_run_at, total_run_count = v.total_run_count "  # noqa: S608 - table name from the model, values bound
            f"FROM (VALUES {values}) AS v(id, last_run_at, total_run_count) WHERE t.id = v.id",
            params,
        )


class PortalEntry(ModelEntry):
    def __init__(self, model, app=None):
        super().__init__(model, app=app)
        if model.exchange is None:
            # Routed by queue name (Celery's anonymous direct exchange: an LPUSH on the queue's list), so
            # there is no binding to declare first; the stock path re-declares the queue on every send
            # (about a quarter of a dispatch). Schedules with their own exchange keep the declare.
            self.options["declare"] = []

    def __next__(self):
        """The entry after a run: a copy with the new run time (stock re-reads the row's JSON per run)."""
        model = self.model
        model.last_run_at = self._default_now()
        model.total_run_count += 1
        model.no_changes = True
        entry = object.__new__(type(self))  # copy.copy would go through ScheduleEntry.__reduce__ and __init__
        entry.__dict__.update(self.__dict__)
        entry.last_run_at = model.last_run_at
        entry.total_run_count = model.total_run_count
        return entry

    next = __next__


class PortalScheduler(DatabaseScheduler):
    Entry = PortalEntry
    sync_every = SYNC_EVERY_S

    _last_heartbeat = 0.0

    def __init__(self, *args, **kwargs):
        self._redis = redis_client()
        self.lock_ttl = float(settings.BEAT_LOCK_TTL_SECONDS)
        self._lock = self._redis.lock(settings.BEAT_LOCK_KEY, timeout=self.lock_ttl, thread_local=False)
        self._is_leader = False
        self._renewed_at = 0.0
        self._next_lock_try = 0.0
        self._next_change_check = 0.0
        self._next_full_reload = time.monotonic() + FULL_RELOAD_EVERY_S
        self._needs_reload = False
        self._needs_run_times = False
        self._watermark = None
        self.identity = f"{socket.gethostname()}:{os.getpid()}"
        super().__init__(*args, **kwargs)

    # -- loading -------------------------------------------------------------------------------------------

    @property
    def schedule(self):
        if self._schedule is None:
            self._schedule = {}
            self._load()
        return self._schedule

    def _load(self) -> bool:
        """Replace the in-memory schedule with the database's; on a database error keep the old one."""
        try:
            _refresh_connection()
            changed_at = self.Changes.last_change()
            watermark = self.Model.objects.aggregate(latest=Max("date_changed"))["latest"]
            loaded = self.all_as_schedule()
        except DB_ERRORS as exc:
            logger.warning("beat: database unavailable, keeping the schedule in memory: %s", exc)
            self._needs_reload = True
            return False
        self._schedule = loaded
        self._last_timestamp = changed_at
        self._watermark = watermark
        self._needs_reload = False
        self._heap = None
        return True

    def _reload_if_changed(self) -> None:
        now = time.monotonic()
        full = now >= self._next_full_reload or self._needs_reload
        if not full:
            try:
                _refresh_connection()
                changed_at = self.Changes.last_change()
            except DB_ERRORS as exc:
                logger.warning("beat: database unavailable, dispatching from memory: %s", exc)
                return
            if changed_at is None or changed_at == self._last_timestamp:
                return
        self.sync()  # run times first, so what is read back carries them
        if not full:
            try:
                if self._apply_changes():
                    self._last_timestamp = changed_at
                    return
            except DB_ERRORS as exc:
                logger.warning("beat: database unavailable while applying a change: %s", exc)
                self._needs_reload = True
                return
        logger.info("beat: reloading the whole schedule")
        if self._load():
            self._next_full_reload = now + FULL_RELOAD_EVERY_S

    def _apply_changes(self) -> bool:
        """Apply what changed since the last read, without reading every schedule again.

        Rows saved since then carry a newer `date_changed` (auto_now); rows enabled, disabled or deleted by a
        bulk UPDATE/DELETE show up as a difference in the set of enabled ids. When the change marker moved but
        neither shows anything (a bulk update of other fields), returns False and the caller reloads it all.
        """
        if self._watermark is None:
            return False
        rows = list(
            self.Model.objects.filter(date_changed__gt=self._watermark - CHANGE_SLACK).select_related(
                "interval", "crontab", "solar", "clocked"
            )
        )
        enabled_ids = set(self.enabled_models_qs().values_list("pk", flat=True))
        names_by_pk = {entry.model.pk: name for name, entry in self._schedule.items()}
        visible = any(row.date_changed > self._watermark for row in rows)
        for row in rows:
            self._drop(names_by_pk.pop(row.pk, None))
            if row.pk in enabled_ids and self._add(row):
                names_by_pk[row.pk] = row.name
        missing = enabled_ids - names_by_pk.keys()
        if missing:
            for row in self.enabled_models_qs().filter(pk__in=missing):
                self._add(row)
        gone = names_by_pk.keys() - enabled_ids
        for pk in gone:
            self._drop(names_by_pk[pk])
        if rows:
            self._watermark = max(self._watermark, *(row.date_changed for row in rows))
        logger.info("beat: applied %d changed, %d added, %d removed", len(rows), len(missing), len(gone))
        return bool(visible or missing or gone)

    def _read_run_times(self) -> None:
        """Take over the run times the previous holder wrote (one light query, not a reload of every row)."""
        try:
            _refresh_connection()
            stored = self.enabled_models_qs().values_list("pk", "last_run_at", "total_run_count")
            entries = {entry.model.pk: entry for entry in self._schedule.values()}
            for pk, last_run_at, total_run_count in stored:
                entry = entries.get(pk)
                if entry is not None and last_run_at and (not entry.last_run_at or last_run_at > entry.last_run_at):
                    entry.last_run_at = entry.model.last_run_at = last_run_at
                    entry.total_run_count = entry.model.total_run_count = total_run_count
        except DB_ERRORS as exc:
            logger.warning("beat: database unavailable, reading the whole schedule once it answers: %s", exc)
            self._needs_reload = True
        self._needs_run_times = False
        self._heap = None

    def _add(self, row) -> bool:
        try:
            entry = self.Entry(row, app=self.app)
        except ValueError:
            return False
        self._schedule[entry.name] = entry
        if self._heap is not None:
            try:
                is_due, delay = entry.is_due()
            except Exception:  # noqa: BLE001 - as celery.beat: one broken entry must not stop beat
                is_due, delay = self._is_due_failed(entry)
            heapq.heappush(self._heap, event_t(self._when(entry, 0 if is_due else delay), 5, entry))
        return True

    def _drop(self, name: str | None) -> None:
        """Forget an entry; its event left in the heap is skipped when it comes up (lazy deletion)."""
        if name is not None:
            self._schedule.pop(name, None)
            self._dirty.discard(name)

    # -- the lock ------------------------------------------------------------------------------------------

    def _holds_lock(self) -> bool:
        now = time.monotonic()
        if self._is_leader:
            if now - self._renewed_at < self.lock_ttl / 3:
                return True
            try:
                self._lock.reacquire()
                self._renewed_at = now
                return True
            except redis.exceptions.LockError:
                logger.warning("beat %s: lost the lock, standing by", self.identity)
                self._step_down()
                return False
            except redis.RedisError as exc:
                if now - self._renewed_at >= self.lock_ttl:
                    logger.warning("beat %s: lock expired while Redis was unreachable: %s", self.identity, exc)
                    self._step_down()
                return False  # the broker is Redis too: nothing could be sent now anyway
        if now < self._next_lock_try:
            return False
        self._next_lock_try = now + LOCK_RETRY_S
        try:
            acquired = self._lock.acquire(blocking=False)
        except redis.RedisError as exc:
            logger.warning("beat %s: cannot reach Redis for the lock: %s", self.identity, exc)
            return False
        if not acquired:
            return False
        logger.info("beat %s: acquired the beat lock, sending", self.identity)
        self._is_leader = True
        self._renewed_at = now
        self._needs_run_times = True  # the previous holder's run times are in the database
        self._next_change_check = 0.0  # and whatever changed while this beat waited
        return True

    def _step_down(self) -> None:
        self._is_leader = False
        self._heap = None
        self.sync()

    def release_lock(self) -> None:
        if not self._is_leader:
            return
        self._is_leader = False
        try:
            self._lock.release()
            logger.info("beat %s: released the beat lock", self.identity)
        except redis.RedisError as exc:  # expired already, or Redis gone: the TTL frees it
            logger.warning("beat %s: lock not released: %s", self.identity, exc)

    # -- ticking -------------------------------------------------------------------------------------------

    def tick(self, *args, **kwargs):
        self._heartbeat()
        if not self._holds_lock():
            return LOCK_RETRY_S
        now = time.monotonic()
        if now >= self._next_change_check:
            self._next_change_check = now + CHANGE_POLL_S
            self._reload_if_changed()
        if self._needs_run_times:
            self._read_run_times()
        if self._heap is None:
            self.populate_heap()
        return self._dispatch_due()

    def _dispatch_due(self) -> float:
        """Send every due entry for up to BURST_S, pipelined to Redis (kombu's Producer.batch)."""
        heap = self._heap
        burst_ends = time.monotonic() + BURST_S
        producer = self.producer
        try:
            with producer.batch(max_size=PUBLISH_BATCH_SIZE):
                return self._dispatch_burst(heap, producer, burst_ends)
        except Exception as exc:  # noqa: BLE001 - as celery.beat: a broker error must not stop beat
            logger.error("beat: publishing failed, entries already advanced: %r", exc, exc_info=True)
            return CHANGE_POLL_S

    def _dispatch_burst(self, heap, producer, burst_ends: float) -> float:
        while heap:
            event = heap[0]
            now = time.time()
            if event[0] > now:
                return min(event[0] - now, CHANGE_POLL_S)
            entry = event[2]
            if self._schedule.get(entry.name) is not entry:  # replaced or removed since it was pushed
                heapq.heappop(heap)
                continue
            try:
                is_due, next_time_to_run = self.is_due(entry)
            except Exception:  # noqa: BLE001 - one broken entry must not stop beat (as celery.beat does)
                is_due, next_time_to_run = self._is_due_failed(entry)
            heapq.heappop(heap)
            if is_due:
                next_entry = self.reserve(entry)
                self.apply_entry(entry, producer=producer)
                heapq.heappush(heap, event_t(now + next_time_to_run, event[1], next_entry))
            else:
                delay = next_time_to_run if isinstance(next_time_to_run, int | float) else self.max_interval
                heapq.heappush(heap, event_t(now + delay, event[1], entry))
            if time.monotonic() >= burst_ends:
                return 0
        return CHANGE_POLL_S

    def enabled_models_qs(self):
        # The stock query leaves each row's schedule to a lazy foreign key: one query per row on every load.
        return super().enabled_models_qs().select_related("interval", "crontab", "solar", "clocked")

    def reserve(self, entry):
        new_entry = super().reserve(entry)
        self._schedule[new_entry.name] = new_entry
        return new_entry

    # -- writing run times back ----------------------------------------------------------------------------

    def sync(self):
        if not self._dirty or not self._schedule:
            return
        names = [name for name in self._dirty if name in self._schedule]
        rows = [self._schedule[name].model for name in names]
        try:
            _refresh_connection()
            for start in range(0, len(rows), SYNC_BATCH_SIZE):
                _save_run_times(self.Model, rows[start : start + SYNC_BATCH_SIZE])
        except DB_ERRORS as exc:
            logger.warning("beat: run times kept in memory until the database answers: %s", exc)
            return
        self._dirty.difference_update(names)
        self._dirty.intersection_update(self._schedule)  # entries gone from the schedule have no row to save

    def close(self):
        try:
            super().close()
        finally:
            self.release_lock()

    @property
    def info(self):
        return (
            f"    . lock -> {settings.BEAT_LOCK_KEY} (ttl {humanize_seconds(self.lock_ttl)})\n"
            f"    . change poll -> every {humanize_seconds(CHANGE_POLL_S)}"
        )

    # -- heartbeat -----------------------------------------------------------------------------------------

    def _heartbeat(self) -> None:
        now = time.time()
        if now - self._last_heartbeat < HEARTBEAT_EVERY_S:
            return
        try:
            self._redis.set(settings.BEAT_HEARTBEAT_KEY, now, ex=24 * 3600)
            self._last_heartbeat = now
        except redis.RedisError as exc:  # beat keeps scheduling; /healthz will say the broker is down
            logger.warning("beat heartbeat not written: %s", exc)
