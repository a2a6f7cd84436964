"""Beat's scheduler: django-celery-beat's DatabaseScheduler, made fit for one live beat and large tables.

What it adds to the stock DatabaseScheduler (see ANCHORS.md section 5 for where the stock one spends time):

- **One sender at a time.** A Redis lock with a TTL (redis-py's `Lock`) guards sending. The holder renews it
  while alive and releases it on shutdown; a second beat waits, retrying every LOCK_RETRY_S, and takes over
  once the holder's lock expires (killed holder) or is released.
- **Once, even across a failover.** Before a batch is published, the holder records each entry's new run
  time in a Redis hash beside the lock (SENT_KEY), in one script that first checks the lock is still its
  own. A beat that takes over (or a restarted one) reads that hash as well as the database, where run
  times are written back only every SYNC_EVERY_S: a slot the dead holder sent in its last seconds is never
  sent again. (If the beat dies between the record and the publish, that one slot is skipped, never doubled.)
- **Fast cold start and takeover.** The schedule rows (interval, crontab, ...) are read once and their
  Celery schedule objects shared by every entry that uses them; plain interval entries get their heap
  time by arithmetic instead of a timezone-converting `is_due()` each. 10,000 schedules load in well
  under a second (bench/beat.py: beat.load_10k_s).
- **Fast change detection.** `PeriodicTasks.last_change()` is polled every CHANGE_POLL_S, not on every
  dispatch, and beat never sleeps longer than that, so an edit is live within about a second plus one reload.
- **Fast dispatch.** One tick sends every due entry for up to BURST_S (stock: one entry per tick, each tick
  paying a database round trip and an O(N) schedule comparison), and `last_run_at` is written back with one
  `bulk_update` per batch instead of a SELECT and an UPDATE per entry.
- **Database outages.** Every database call is guarded: beat keeps dispatching from the schedule it holds,
  keeps unsaved run times in memory, and reloads once the database answers again.
- **A disabled schedule starts afresh.** Run times are written back only onto rows still enabled and not
  reset since the run (disabling clears `last_run_at`): a schedule disabled just after it ran, then enabled
  again later, waits one period instead of firing at once. A schedule that cannot be built or whose next
  run cannot be computed is logged and skipped; it never stops beat.
- No task-sent events from beat unless BEAT_SEND_SENT_EVENTS (they cost about 30% of a dispatch).
- A heartbeat in Redis for /healthz, written only by the lock holder after a dispatch pass whose publishes
  went through: it says "a beat is sending", not merely "a beat process is alive" (a standby, a beat whose
  every tick fails, or one that cannot publish lets it go stale).
"""

import heapq
import json
import logging
import os
import socket
import time
from datetime import UTC, datetime, timedelta

import redis
from celery import current_app
from celery import schedules as celery_schedules
from celery.beat import event_t
from celery.signals import beat_init
from celery.utils.time import humanize_seconds
from django.conf import settings
from django.db import DatabaseError, InterfaceError, close_old_connections, connection
from django.db.models import Max, Q
from django.db.models.base import ModelState
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, SolarSchedule
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
SENT_KEY_SUFFIX = ":sent"  # beside the lock: {schedule id: "<run time epoch>:<run count>"} of every send
SCHEDULE_KINDS = (  # PeriodicTask's foreign key, the model behind it
    ("interval", IntervalSchedule),
    ("crontab", CrontabSchedule),
    ("solar", SolarSchedule),
    ("clocked", ClockedSchedule),
)

# Records a batch's run times, only while the caller still holds the lock (the token check is fencing: a
# holder paused past its TTL finds another token and sends nothing).
RECORD_SENDS_LUA = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('hset', KEYS[2], unpack(ARGV, 2))
return 1
"""


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

    Only onto rows that are still enabled and were not reset after the run: disabling a schedule clears
    its last_run_at (PeriodicTask.save() and our service both do), and a run time written back onto it
    afterwards would make it fire at once when someone enables it again later.
    PostgreSQL: UPDATE ... FROM (VALUES ...), a join (bulk_update's CASE per row is quadratic in the batch).
    Elsewhere (SQLite, single-process development) one UPDATE per row does.
    """
    if connection.vendor != "postgresql":
        for row in rows:
            model.objects.filter(
                Q(last_run_at__isnull=False) | Q(date_changed__lte=row.last_run_at), pk=row.pk, enabled=True
            ).update(last_run_at=row.last_run_at, total_run_count=row.total_run_count)
        return
    table = connection.ops.quote_name(model._meta.db_table)
    values = ", ".join(["(%s, %s::timestamptz, %s)"] * len(rows))
    params = [value for row in rows for value in (row.pk, row.last_run_at, row.total_run_count)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS t SET last_run_at = v.last_run_at, total_run_count = v.total_run_count "  # noqa: S608 - table name from the model, values bound
            f"FROM (VALUES {values}) AS v(id, last_run_at, total_run_count) WHERE t.id = v.id AND t.enabled "
            "AND (t.last_run_at IS NOT NULL OR t.date_changed <= v.last_run_at)",
            params,
        )


def _fresher_run(*, last_run_at, date_changed, recorded):
    """The recorded send if it is newer than the row's run time and the row was not reset after it."""
    if recorded is None:
        return None
    sent_at, _count = recorded
    if last_run_at is None and date_changed is not None and date_changed > sent_at:
        return None  # disabled (run time cleared) after that send: the schedule starts afresh
    if last_run_at is not None and last_run_at >= sent_at:
        return None
    return recorded


def _model_from_values(model, attnames, values, db):
    """The instance Model.from_db would build, without Model.__init__'s per-field work (a third of loading
    10,000 rows); the values come from values_list, so the fields' database converters have run."""
    row = model.__new__(model)
    row.__dict__.update(zip(attnames, values, strict=True))
    row._state = ModelState()
    row._state.adding = False
    row._state.db = db
    return row


def _loads(raw: str | None, empty: str):
    """JSON arguments; the common empty ones without a parse (10,000 of them at every load)."""
    if not raw or raw == empty:
        return [] if empty == "[]" else {}
    return json.loads(raw)


class PortalEntry(ModelEntry):
    def __init__(self, model, app=None, schedule=None):
        """As ModelEntry, but with a `schedule` object shared by every entry on the same schedule row (the
        stock entry builds its own from the row: a crontab is parsed again for each of 10,000 rows)."""
        if schedule is None:
            self.stored_last_run_at = model.last_run_at  # None: never run, or reset by a disable
            super().__init__(model, app=app)
        else:
            self._init_fast(model, app, schedule)
        if model.exchange is None:
            # Routed by queue name (Celery's anonymous direct exchange: an LPUSH on the queue's list), so
            # there is no binding to declare first; the stock path re-declares the queue on every send
            # (about a quarter of a dispatch). Schedules with their own exchange keep the declare.
            self.options["declare"] = []

    def _init_fast(self, model, app, schedule) -> None:
        """ModelEntry.__init__ with the schedule given; a row whose arguments are not JSON raises ValueError
        (the loader skips it and logs, where the stock entry would save the row disabled)."""
        self.app = app or current_app._get_current_object()
        self.name = model.name
        self.task = model.task
        self.schedule = schedule
        self.args = _loads(model.args, "[]")
        self.kwargs = _loads(model.kwargs, "{}")
        options = {"queue": model.queue, "exchange": model.exchange, "routing_key": model.routing_key}
        options["priority"] = model.priority
        self.options = {option: value for option, value in options.items() if value is not None}
        if model.expires_:
            self.options["expires"] = model.expires_
        headers = _loads(model.headers, "{}")
        headers["periodic_task_name"] = model.name
        self.options["headers"] = headers
        self.total_run_count = model.total_run_count
        self.model = model
        self.stored_last_run_at = model.last_run_at
        if not model.last_run_at:
            model.last_run_at = model.date_changed or self._default_now()
            if model.start_time:  # as stock: run at start_time, not a period after it
                model.last_run_at = model.last_run_at - timedelta(days=365 * 30)
        self.last_run_at = model.last_run_at

    def heap_time(self, now: float) -> float | None:
        """When this entry is next due (epoch seconds), by arithmetic for a plain interval entry; None when
        only is_due() can say (crontab, solar, clocked, start time, expiry, one-off)."""
        model = self.model
        if (
            type(self.schedule) is not celery_schedules.schedule
            or model.start_time is not None
            or model.expires is not None
            or model.one_off
            or not model.enabled
            or self.last_run_at.tzinfo is None
        ):
            return None
        return max(self.last_run_at.timestamp() + self.schedule.run_every.total_seconds(), now)

    def __next__(self):
        """The entry after a run: a copy with the new run time (stock re-reads the row's JSON per run)."""
        model = self.model
        model.last_run_at = self._default_now()
        model.total_run_count += 1
        model.no_changes = True
        entry = object.__new__(type(self))  # copy.copy would go through ScheduleEntry.__reduce__ and __init__
        entry.__dict__.update(self.__dict__)
        entry.last_run_at = entry.stored_last_run_at = model.last_run_at
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
        self._sent_key = settings.BEAT_LOCK_KEY + SENT_KEY_SUFFIX
        self._record_sends_script = self._redis.register_script(RECORD_SENDS_LUA)
        self._is_leader = False
        self._renewed_at = 0.0
        self._next_lock_try = 0.0
        self._next_change_check = 0.0
        self._next_full_reload = time.monotonic() + FULL_RELOAD_EVERY_S
        self._needs_reload = False
        self._needs_run_times = False
        self._loaded_at = self._acquired_at = 0.0  # time.monotonic() of the last full load, of taking the lock
        self._watermark = None
        self.identity = f"{socket.gethostname()}:{os.getpid()}"
        super().__init__(*args, **kwargs)

    # -- loading -------------------------------------------------------------------------------------------

    @property
    def schedule(self):
        self._ensure_loaded()
        return self._schedule

    def _ensure_loaded(self) -> None:
        if self._schedule is None:
            self._schedule = {}  # what beat holds if the database does not answer (a reload is then due)
            self._load()

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
        self._loaded_at = time.monotonic()
        return True

    def setup_schedule(self):
        """Load on the first tick, once the lock has been tried, not here: a beat that starts as the holder
        then reads the run times with the schedule, in one pass (a standby loads on its first tick too)."""
        if self.app.conf.beat_schedule:  # entries from settings are written to the database first (stock)
            super().setup_schedule()

    def all_as_schedule(self):
        """Every enabled row as an entry; the schedule rows read once and shared (see PortalEntry).

        A row whose schedule cannot be built (a value the validators would refuse, written past them) is
        logged and left out: one broken row must not keep beat from starting.
        """
        # Neither select_related nor the stock manager's prefetch: the schedule rows come from _schedule_rows.
        rows = super().enabled_models_qs().prefetch_related(None)
        shared = self._schedule_rows(rows)
        attnames = [field.attname for field in self.Model._meta.concrete_fields]
        built = {}
        for values in rows.values_list(*attnames):
            row = _model_from_values(self.Model, attnames, values, rows.db)
            try:
                for field, _model in SCHEDULE_KINDS:
                    schedule_id = getattr(row, f"{field}_id")
                    if schedule_id is not None:
                        schedule_row, schedule = shared[field][schedule_id]
                        row._state.fields_cache[field] = schedule_row
                        break
                else:
                    continue  # no schedule at all: nothing to run
                if schedule is None:
                    raise ValueError(f"its {field} schedule cannot be built")
                entry = self.Entry(row, app=self.app, schedule=schedule)
            except Exception as exc:  # noqa: BLE001 - one broken row must not stop beat (as celery.beat does)
                logger.error("beat: schedule %r left out, it cannot be loaded: %r", row.name, exc)
                continue
            built[entry.name] = entry
        return built

    @staticmethod
    def _schedule_rows(rows) -> dict:
        """{field: {id: (schedule row, Celery schedule object or None)}} for the rows' schedules."""
        shared = {}
        for field, model in SCHEDULE_KINDS:
            by_id = {}
            for schedule_row in model.objects.filter(pk__in=rows.values(f"{field}_id")):
                try:
                    by_id[schedule_row.pk] = (schedule_row, schedule_row.schedule)
                except Exception as exc:  # noqa: BLE001 - e.g. a period or crontab field written past validation
                    logger.error("beat: %s schedule %s cannot be built: %r", field, schedule_row.pk, exc)
                    by_id[schedule_row.pk] = (schedule_row, None)
            shared[field] = by_id
        return shared

    def populate_heap(self, event_t=event_t, heapify=heapq.heapify):
        """As celery.beat, with a plain interval entry's time by arithmetic (is_due() converts time zones:
        most of a 10,000-entry heap build)."""
        now = time.time()
        heap = []
        for entry in self.schedule.values():
            when = entry.heap_time(now)
            if when is None:
                try:
                    is_due, delay = entry.is_due()
                except Exception:  # noqa: BLE001 - one broken entry must not stop beat
                    is_due, delay = self._is_due_failed(entry)
                when = self._when(entry, 0 if is_due else delay)
            heap.append(event_t(when, 5, entry))
        heapify(heap)
        self._heap = heap

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
        """Take over the run times the previous holder left: its record of every send in Redis, written
        before each publish, so never behind the database (written back every SYNC_EVERY_S). Only when
        there is no record (Redis lost it, or the holder was a version that kept none) is the database read:
        one light query, not a reload of every row. Rows edited meanwhile were read again just before."""
        entries = {entry.model.pk: entry for entry in self._schedule.values()}
        sent = self._read_sends()
        if sent or self._loaded_at >= self._acquired_at:  # the record, or a load made while holding the lock
            stored = (
                (pk, entry.stored_last_run_at, entry.total_run_count, entry.model.date_changed)
                for pk, entry in entries.items()
            )
        else:
            try:
                _refresh_connection()
                stored = list(
                    self.enabled_models_qs().values_list("pk", "last_run_at", "total_run_count", "date_changed")
                )
            except DB_ERRORS as exc:
                logger.warning("beat: database unavailable, reading the whole schedule once it answers: %s", exc)
                self._needs_reload = True
                stored = []
        for pk, last_run_at, total_run_count, date_changed in stored:
            entry = entries.get(pk)
            if entry is None:
                continue
            recorded = _fresher_run(last_run_at=last_run_at, date_changed=date_changed, recorded=sent.get(pk))
            if recorded is not None:
                last_run_at, total_run_count = recorded
            if last_run_at and (not entry.last_run_at or last_run_at > entry.last_run_at):
                entry.last_run_at = entry.model.last_run_at = last_run_at
                entry.stored_last_run_at = last_run_at
                entry.total_run_count = entry.model.total_run_count = total_run_count
        self._needs_run_times = False
        self._heap = None

    def _read_sends(self) -> dict:
        """{schedule id: (run time, run count)} as recorded before each publish; {} if Redis does not answer."""
        try:
            raw = self._redis.hgetall(self._sent_key)
        except redis.RedisError as exc:
            logger.warning("beat: the record of sends is unreadable, using the database's run times: %s", exc)
            return {}
        sent = {}
        for field, value in raw.items():
            try:
                epoch, count = value.split(b":")
                sent[int(field)] = (datetime.fromtimestamp(float(epoch), tz=UTC), int(count))
            except ValueError:
                continue
        return sent

    def _record_sends(self, batch, run_at: datetime) -> bool:
        """Record the run time of every entry in a batch about to be published, if this beat still holds
        the lock; on False nothing may be published."""
        args = [self._lock.local.token]
        stamp = run_at.timestamp()
        for _now, _priority, entry, _next in batch:
            args += [entry.model.pk, f"{stamp}:{entry.total_run_count + 1}"]
        try:
            recorded = self._record_sends_script(keys=[settings.BEAT_LOCK_KEY, self._sent_key], args=args)
        except redis.RedisError as exc:
            logger.error("beat: %d due entries held back, their send could not be recorded: %s", len(batch), exc)
            return False
        if not recorded:
            logger.warning("beat %s: lost the lock before sending, standing by", self.identity)
            self._step_down()
            return False
        return True

    def _add(self, row) -> bool:
        try:
            entry = self.Entry(row, app=self.app)
        except Exception as exc:  # noqa: BLE001 - one broken row must not stop beat (see all_as_schedule)
            logger.error("beat: schedule %r left out, it cannot be loaded: %r", row.name, exc)
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
        self._renewed_at = self._acquired_at = now
        self._needs_run_times = True  # the previous holder's run times: in Redis, and in the database
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
        holds_lock = self._holds_lock()
        self._ensure_loaded()  # first tick: after trying the lock (setup_schedule); a standby is then ready
        if not holds_lock:
            return LOCK_RETRY_S
        now = time.monotonic()
        if now >= self._next_change_check:
            self._next_change_check = now + CHANGE_POLL_S
            self._reload_if_changed()
        if self._needs_run_times:
            self._read_run_times()
        if self._heap is None:
            self.populate_heap()
        delay, sent_all = self._dispatch_due()
        if sent_all:
            self._heartbeat()
        return delay

    def _dispatch_due(self) -> tuple[float, bool]:
        """Send every due entry for up to BURST_S, pipelined to Redis (kombu's Producer.batch).

        Returns the delay until the next tick, and whether every due entry was recorded and published.
        """
        heap = self._heap
        burst_ends = time.monotonic() + BURST_S
        producer = self.producer
        try:
            with producer.batch(max_size=PUBLISH_BATCH_SIZE):
                return self._dispatch_burst(heap, producer, burst_ends)
        except Exception as exc:  # noqa: BLE001 - as celery.beat: a broker error must not stop beat
            logger.error("beat: publishing failed, entries already advanced: %r", exc, exc_info=True)
            return CHANGE_POLL_S, False

    def _dispatch_burst(self, heap, producer, burst_ends: float) -> tuple[float, bool]:
        failed = 0
        while True:
            batch, delay = self._take_due(heap, burst_ends)
            if batch:
                run_at = batch[0][2]._default_now()
                if not self._record_sends(batch, run_at):
                    for event in batch:  # not advanced: still due for whoever holds the lock next
                        heapq.heappush(heap, event_t(*event[:3]))
                    return LOCK_RETRY_S, False
                for when, priority, entry, next_time_to_run in batch:
                    next_entry = self.reserve(entry)
                    next_entry.last_run_at = next_entry.stored_last_run_at = run_at  # as recorded
                    next_entry.model.last_run_at = run_at
                    heapq.heappush(heap, event_t(when + next_time_to_run, priority, next_entry))
                    try:
                        self.apply_entry(entry, producer=producer)
                    except Exception as exc:  # noqa: BLE001 - as celery.beat: log it and send the others
                        failed += 1
                        logger.error("beat: %s not sent: %r", entry.name, exc)
            if delay is not None:
                return delay, not failed

    def apply_entry(self, entry, producer=None):
        """As celery.beat's, except that a failed send raises (celery.beat only logs it), so that the
        heartbeat is not written while nothing goes out."""
        logger.info("Scheduler: Sending due task %s (%s)", entry.name, entry.task)
        self.apply_async(entry, producer=producer, advance=False)

    def _take_due(self, heap, burst_ends: float):
        """Pop up to PUBLISH_BATCH_SIZE due entries off the heap, without advancing them yet.

        Returns (batch of (now, priority, entry, seconds to its next run), the delay until the next tick or
        None to take another batch).
        """
        batch = []
        while heap:
            event = heap[0]
            now = time.time()
            if event[0] > now:
                return batch, min(event[0] - now, CHANGE_POLL_S)
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
                batch.append((now, event[1], entry, next_time_to_run))
            else:
                delay = next_time_to_run if isinstance(next_time_to_run, int | float) else self.max_interval
                heapq.heappush(heap, event_t(now + delay, event[1], entry))
            if time.monotonic() >= burst_ends:
                return batch, 0
            if len(batch) >= PUBLISH_BATCH_SIZE:
                return batch, None
        return batch, CHANGE_POLL_S

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
