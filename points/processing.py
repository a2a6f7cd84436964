"""Applying captured events in batches: the worker side of the capture outbox.

One batch is one transaction: claim up to BATCH_SIZE pending events (SKIP LOCKED, so workers take disjoint
batches), record them (a repeated event id does nothing), advance the progress of every rule in effect, append
the awards to the ledger with before/after balances, and delete the claimed outbox rows. Set-based: a batch
costs about fifteen statements whatever its size, instead of five per event.

Lock order, the same in every batch so two workers cannot deadlock: the batch's accounts (by id), then the
awardee counters of its capped rules (by id). Holding a user's account row makes that user's progress and
awards one batch's business at a time; holding a counter makes a cap exact under any number of workers.
"""

import logging
import random
from collections import defaultdict
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models.functions import Mod
from django.utils import timezone

from points import periods
from points.bulk import rows_insert, rows_update
from points.ledger import Append, accounts_lock, ledger_append_many
from points.models import (
    Action,
    ActionRecord,
    LedgerEntry,
    PendingEvent,
    Rule,
    RuleAwardees,
    RuleProgress,
    Status,
)

logger = logging.getLogger(__name__)

BATCH_SIZE = 500  # one batch is one transaction of ~15 statements; 500 keeps it well under a second
PARTITIONS = 8  # user partitions that batches take in parallel (more than the workers' processes)
ADVISORY_LOCK_CLASS = 0x504F  # "PO": the first key of the partitions' advisory locks


@dataclass
class _Award:
    user_id: int
    rule: Rule
    progress: RuleProgress
    record: ActionRecord


def events_process_batch(*, limit: int = BATCH_SIZE) -> int:
    """Apply up to `limit` pending events; returns how many outbox rows were consumed."""
    with transaction.atomic(durable=True):
        pending = _claim(limit)
        if not pending:
            return 0
        _apply(pending)
        PendingEvent.objects.filter(pk__in=[event.pk for event in pending]).delete()
    return len(pending)


def _claim(limit: int) -> list[PendingEvent]:
    """Lock up to `limit` pending events, oldest first, for this transaction.

    On PostgreSQL a batch takes the events of one user partition (user id modulo PARTITIONS), holding that
    partition's advisory lock until it commits: concurrent batches then never share a user, so they never
    wait on each other's account locks, and one user's events are applied by one batch at a time, in order.
    """
    pending = PendingEvent.objects.select_for_update(skip_locked=True).order_by("id")
    if connection.vendor != "postgresql":
        return list(pending[:limit])  # SQLite: one writer at a time anyway
    first = random.randrange(PARTITIONS)
    with connection.cursor() as cursor:
        for step in range(PARTITIONS):
            partition = (first + step) % PARTITIONS
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [ADVISORY_LOCK_CLASS, partition])
            if not cursor.fetchone()[0]:
                continue  # another batch works on this partition
            claimed = list(pending.alias(partition=Mod("user_id", PARTITIONS)).filter(partition=partition)[:limit])
            if claimed:
                return claimed
    return []


def _apply(pending: list[PendingEvent]) -> None:
    known = set(
        ActionRecord.objects.filter(event_id__in=[e.event_id for e in pending]).values_list("event_id", flat=True)
    )
    user_ids = set(get_user_model().objects.filter(pk__in={e.user_id for e in pending}).values_list("pk", flat=True))
    action_ids = set(Action.all_objects.filter(pk__in={e.action_id for e in pending}).values_list("pk", flat=True))
    events, seen = [], set()
    for event in pending:
        if event.event_id in known or event.event_id in seen:
            continue  # delivered again: its effect is already there
        if event.user_id not in user_ids or event.action_id not in action_ids:
            logger.warning("points: dropping event %s: its user or action no longer exists", event.event_id)
            continue
        seen.add(event.event_id)
        events.append(event)
    if not events:
        return
    events.sort(key=lambda e: (e.occurred_at, e.pk))  # first come, first served for capped rules

    # The users' accounts first (the lock order every writer keeps); the awards' append below finds them held.
    accounts_lock(user_ids={e.user_id for e in events})
    now = timezone.now()
    records = [
        ActionRecord(
            event_id=e.event_id,
            user_id=e.user_id,
            action_id=e.action_id,
            business_id=e.business_id,
            occurred_at=e.occurred_at,
            recorded_at=now,
            language=e.language,
            country=e.country,
            location=e.location,
        )
        for e in events
    ]
    rows_insert(ActionRecord, records, RECORD_FIELDS)
    if connection.vendor == "postgresql":  # COPY returns no ids: read them back by the unique event id
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT event_id, id FROM points_actionrecord WHERE event_id = ANY(%s)",
                [[record.event_id for record in records]],
            )
            ids = dict(cursor.fetchall())
        for record in records:
            record.pk = ids[record.event_id]
    rules_by_action = defaultdict(list)
    for rule in Rule.objects.filter(action_id__in={e.action_id for e in events}, status=Status.ACTIVE).order_by("pk"):
        rules_by_action[rule.action_id].append(rule)
    if not rules_by_action:
        return
    relevant = [(e, r, rule) for e, r in zip(events, records, strict=True) for rule in rules_by_action[e.action_id]]
    relevant = [(e, r, rule) for e, r, rule in relevant if rule.in_effect_at(e.occurred_at)]
    if not relevant:
        return

    repeats = _earlier_business_ids(relevant, new_record_ids=[r.pk for r in records])
    counters = _lock_counters(relevant)
    awardees = _awardees(relevant)
    progress = _progress(relevant)

    new_progress: list[RuleProgress] = []
    awards, touched = evaluate(
        relevant, progress=progress, counters=counters, awardees=awardees, repeats=repeats, new_rows=new_progress
    )

    RuleProgress.objects.bulk_create(new_progress)
    created = {id(row) for row in new_progress}
    existing = [row for row in touched if id(row) not in created]
    rows_update(
        RuleProgress,
        existing,
        ["period_start", "last_period", "count", "awards", "last_award_period", "deadline", "updated_at"],
    )
    rows_update(RuleAwardees, list(counters.values()), ["awardees"])
    ledger_append_many(
        [
            Append(
                user_id=award.user_id,
                amount=award.rule.points,
                kind=LedgerEntry.Kind.AWARD.value,
                idempotency_key=f"award:{award.record.event_id}:{award.rule.pk}",
                reason=award.rule.name[:500],
                language=award.record.language,
                country=award.record.country,
                location=award.record.location,
                links={"rule_id": award.rule.pk, "progress_id": award.progress.pk, "source_id": award.record.pk},
            )
            for award in awards
        ]
    )


def evaluate(relevant, *, progress, counters, awardees, repeats, new_rows) -> tuple[list[_Award], list[RuleProgress]]:
    """The rules' decisions for (event, record, rule) triples in event order, on in-memory state: the awards, and
    the progress rows that changed. Shared by the batch (which then saves them) and the simulation (which
    does not)."""
    awards: list[_Award] = []
    touched: dict[int, RuleProgress] = {}
    for event, record, rule in relevant:
        key = (event.user_id, event.action_id, event.business_id)
        if event.business_id and not rule.allow_repeat_business_id:
            if (rule.pk, key) in repeats:
                continue
            repeats.add((rule.pk, key))
        period = periods.period_start(event.occurred_at, rule.period)
        row = _advance(progress, rule, event.user_id, period, new_rows)
        if row is None:
            continue
        touched[id(row)] = row
        if row.count % rule.required_count:
            continue
        if rule.per_user_cap is not None and row.awards >= rule.per_user_cap:
            continue
        if rule.awardee_cap is not None:
            scope = period if rule.awardee_cap_scope == Rule.CapScope.PERIOD else periods.EPOCH
            if (rule.pk, event.user_id, scope) not in awardees:
                counter = counters[(rule.pk, scope)]
                if counter.awardees >= rule.awardee_cap:
                    continue
                counter.awardees += 1
                awardees.add((rule.pk, event.user_id, scope))
        row.awards += 1
        row.last_award_period = period
        awards.append(_Award(user_id=event.user_id, rule=rule, progress=row, record=record))

    return awards, list(touched.values())


def _lock_counters(relevant) -> dict[tuple[int, object], RuleAwardees]:
    keys = set()
    for event, _record, rule in relevant:
        if rule.awardee_cap is not None:
            scope = (
                periods.period_start(event.occurred_at, rule.period)
                if rule.awardee_cap_scope == Rule.CapScope.PERIOD
                else periods.EPOCH
            )
            keys.add((rule.pk, scope))
    if not keys:
        return {}
    RuleAwardees.objects.bulk_create(
        [RuleAwardees(rule_id=rule_id, period_start=scope) for rule_id, scope in keys], ignore_conflicts=True
    )
    rows = (
        RuleAwardees.objects.select_for_update()
        .filter(rule_id__in={k[0] for k in keys}, period_start__in={k[1] for k in keys})
        .order_by("pk")
    )
    return {(row.rule_id, row.period_start): row for row in rows if (row.rule_id, row.period_start) in keys}


def _awardees(relevant) -> set[tuple[int, int, object]]:
    """(rule, user, cap scope) for users a capped rule has already awarded: they do not take a second place."""
    capped = {rule.pk: rule for _e, _r, rule in relevant if rule.awardee_cap is not None}
    if not capped:
        return set()
    users = {event.user_id for event, _r, rule in relevant if rule.pk in capped}
    found = set()
    rows = RuleProgress.objects.filter(rule_id__in=capped, user_id__in=users, awards__gt=0).values_list(
        "rule_id", "user_id", "last_award_period", "period_start"
    )
    for rule_id, user_id, last_award_period, _start in rows:
        if capped[rule_id].awardee_cap_scope == Rule.CapScope.OVERALL:
            found.add((rule_id, user_id, periods.EPOCH))
        elif last_award_period is not None:
            found.add((rule_id, user_id, last_award_period))
    return found


def _earlier_business_ids(relevant, *, new_record_ids: list[int]) -> set:
    """(rule, (user, action, business id)) already recorded before this batch, for rules that count a business
    id once. The account locks are held, so a concurrent batch of the same user has committed by now."""
    once = [(e, rule) for e, _r, rule in relevant if e.business_id and not rule.allow_repeat_business_id]
    if not once:
        return set()
    earlier = set(
        ActionRecord.objects.filter(
            user_id__in={e.user_id for e, _ in once},
            action_id__in={e.action_id for e, _ in once},
            business_id__in={e.business_id for e, _ in once},
        )
        .exclude(pk__in=new_record_ids)
        .values_list("user_id", "action_id", "business_id")
    )
    rule_ids_by_action = defaultdict(set)
    for _e, rule in once:
        rule_ids_by_action[rule.action_id].add(rule.pk)
    return {(rule_id, key) for key in earlier for rule_id in rule_ids_by_action[key[1]]}


def _progress(relevant) -> dict:
    """Existing progress rows the batch may advance: by (rule, user, period) for counting rules, and the latest
    streak row by (rule, user) for streaks."""
    by_period, latest_streak = {}, {}
    counting = [(e, rule) for e, _r, rule in relevant if rule.kind != Rule.Kind.STREAK]
    if counting:
        rows = RuleProgress.objects.filter(
            rule_id__in={rule.pk for _, rule in counting},
            user_id__in={e.user_id for e, _ in counting},
            period_start__in={periods.period_start(e.occurred_at, rule.period) for e, rule in counting},
        )
        by_period = {(row.rule_id, row.user_id, row.period_start): row for row in rows}
    streaks = [(e, rule) for e, _r, rule in relevant if rule.kind == Rule.Kind.STREAK]
    if streaks:
        oldest = min(
            periods.previous_period(periods.period_start(e.occurred_at, rule.period), rule.period)
            for e, rule in streaks
        )
        rows = RuleProgress.objects.filter(
            rule_id__in={rule.pk for _, rule in streaks},
            user_id__in={e.user_id for e, _ in streaks},
            last_period__gte=oldest,
        ).order_by("period_start")
        for row in rows:
            latest_streak[(row.rule_id, row.user_id)] = row
    return {"period": by_period, "streak": latest_streak}


def _advance(progress: dict, rule: Rule, user_id: int, period, new_rows: list) -> RuleProgress | None:
    """Count one completion; the row that changed, or None when it does not count (a streak's period already
    counted, or an event older than the streak)."""
    now = timezone.now()
    if rule.kind != Rule.Kind.STREAK:
        key = (rule.pk, user_id, period)
        row = progress["period"].get(key)
        if row is None:
            row = RuleProgress(
                user_id=user_id,
                rule=rule,
                period_start=period,
                last_period=period,
                deadline=periods.period_end(period, rule.period),
            )
            progress["period"][key] = row
            new_rows.append(row)
        row.count += 1
        row.updated_at = now
        return row
    key = (rule.pk, user_id)
    row = progress["streak"].get(key)
    if row is not None and row.last_period >= period:
        return None  # this period already counts, or the event is older than the streak
    if row is not None and row.last_period == periods.previous_period(period, rule.period):
        row.count += 1
        row.last_period = period
    else:
        row = RuleProgress(user_id=user_id, rule=rule, period_start=period, last_period=period, count=1)
        progress["streak"][key] = row
        new_rows.append(row)
    # The streak lives on while the user completes the action before the end of the next period.
    row.deadline = periods.period_end(periods.next_period(period, rule.period), rule.period)
    row.updated_at = now
    return row


RECORD_FIELDS = (
    "event_id",
    "user_id",
    "action_id",
    "business_id",
    "occurred_at",
    "recorded_at",
    "language",
    "country",
    "location",
)
