"""Reads that cross relations: a user's points summary, and the rule simulation (which never writes)."""

import datetime as dt
from collections import Counter, defaultdict

from django.db.models import Exists, OuterRef
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone

from points import periods
from points.models import (
    Account,
    Action,
    ActionRecord,
    CheckIn,
    LedgerEntry,
    PendingEvent,
    Rule,
    RuleAwardees,
    RuleProgress,
    Status,
)

RECENT_ENTRIES = 10  # shown by GET /api/points/me/
SIMULATION_MAX_RECORDS = 200_000  # a simulation reads at most this many records, so the page stays bounded


def account_summary(*, user, now=None) -> dict:
    """Balance, progress on each active rule in its current period (or current streak), recent entries."""
    now = now or timezone.now()
    balance = Account.objects.filter(user=user).values_list("balance", flat=True).first() or 0
    rules = [rule for rule in Rule.objects.filter(status=Status.ACTIVE).order_by("pk") if rule.in_effect_at(now)]
    progress_rows = RuleProgress.objects.filter(user=user, rule__in=rules).order_by("period_start")
    latest = {}
    for row in progress_rows:
        latest[row.rule_id] = row  # the newest row per rule
    rule_progress = []
    for rule in rules:
        current = periods.period_start(now, rule.period)
        row = latest.get(rule.pk)
        if rule.kind == Rule.Kind.STREAK:
            alive = row is not None and row.last_period >= periods.previous_period(current, rule.period)
            count = row.count if alive else 0
        else:
            count = row.count if row is not None and row.period_start == current else 0
        rule_progress.append(
            {
                "rule": rule.pk,
                "name": rule.name,
                "kind": rule.kind,
                "period": rule.period,
                "points": rule.points,
                "required_count": rule.required_count,
                "count": count,
                "period_start": current.isoformat(),
                "period_end": end.isoformat() if (end := periods.period_end(current, rule.period)) else None,
            }
        )
    entries = LedgerEntry.objects.filter(account__user=user).order_by("-id")[:RECENT_ENTRIES]
    return {
        "balance": balance,
        "rules": rule_progress,
        "entries": [
            {
                "serial_number": e.serial_number,
                "kind": e.kind,
                "amount": e.amount,
                "balance_after": e.balance_after,
                "reason": e.reason,
                "created_at": e.created_at.isoformat(),
            }
            for e in entries
        ],
    }


def rule_simulate(*, rule: Rule, days: int, now=None) -> dict:
    """What `rule` would have awarded over the recorded actions of the last `days` days, as if it had been
    active from the start of that window with no earlier progress. Reads only."""
    from points.processing import evaluate

    now = now or timezone.now()
    since = now - dt.timedelta(days=days)
    records = list(
        ActionRecord.objects.filter(action_id=rule.action_id, occurred_at__gte=since, occurred_at__lt=now)
        .order_by("occurred_at", "pk")
        .only("pk", "event_id", "user_id", "action_id", "business_id", "occurred_at")[:SIMULATION_MAX_RECORDS]
    )
    relevant = [(record, record, rule) for record in records if rule.in_effect_at(record.occurred_at)]
    counters = defaultdict(lambda: RuleAwardees(awardees=0))
    awards, _touched = evaluate(
        relevant,
        progress={"period": {}, "streak": {}},
        counters=counters,
        awardees=set(),
        repeats=set(),
        new_rows=[],
    )
    by_day = Counter(a.record.occurred_at.astimezone(periods.business_zone()).date() for a in awards)
    return {
        "records": len(records),
        "truncated": len(records) >= SIMULATION_MAX_RECORDS,
        "awards": len(awards),
        "points": len(awards) * rule.points,
        "users": len({a.user_id for a in awards}),
        "by_day": sorted(by_day.items()),
        "first_awards": [(a.user_id, a.record.occurred_at) for a in awards[:20]],
    }


def checkins_without_event() -> list[CheckIn]:
    """Check-ins (the demo site's business action) that no captured event stands for: neither an outbox row nor
    an applied record of a check-in points task by that user on that local day. Each should be empty: a 2xx
    check-in commits its event with it. Only check-ins made since the first active check-in task are expected to
    have one."""
    from points.matching import PatternError, pattern_compile

    path = reverse("points:checkin")
    action_ids, since = [], None
    for action in Action.objects.filter(status=Status.ACTIVE, method=Action.Method.POST):
        try:
            if pattern_compile(action.path_pattern).fullmatch(path) is None:
                continue
        except PatternError:
            continue
        action_ids.append(action.pk)
        since = action.created_at if since is None else min(since, action.created_at)
    if not action_ids:
        return []
    zone = periods.business_zone()

    def same_day(model):
        return (
            model.objects.filter(user_id=OuterRef("user_id"), action_id__in=action_ids)
            .annotate(local_day=TruncDate("occurred_at", tzinfo=zone))
            .filter(local_day=OuterRef("day"))
        )

    return list(
        CheckIn.objects.filter(created_at__gte=since)
        .exclude(Exists(same_day(PendingEvent)))
        .exclude(Exists(same_day(ActionRecord)))
        .order_by("pk")
    )
