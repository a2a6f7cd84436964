"""Demo data for `setup_portal --demo`: the seed's rules, a capped rule, a weekly rule, and a hundred and fifty
users with 30 days of history (applied through the same batch processing as live events, each day as of that
day, so the dashboard's charts show the history and not one bar today). Idempotent."""

import datetime as dt
import random
import uuid

from django.contrib.auth import get_user_model
from django.utils import timezone

from backoffice.demo_clock import clock_at
from points.models import Action, ActionRecord, PendingEvent, Rule, Status
from points.processing import events_process_batch

DEMO_USERS = 150
DEMO_DAYS = 30  # the points panel charts 30 days
DEMO_SEED = 4  # the same history on every install

ACTIONS = [
    dict(
        code="checkin",
        name="Daily check-in",
        method="POST",
        path_pattern=r"^/api/points/checkin/$",
        success_field="code",
        success_value="0",
    ),
    dict(code="post", name="Publish a post", method="POST", path_pattern=r"^/api/posts/(?P<business_id>\d+)/publish/$"),
]

RULES = [
    dict(name="Check-in: 1 point", action="checkin", points=1, kind="every", period="day", per_user_cap=1),
    dict(
        name="Ten check-ins in a row: 2 more",
        action="checkin",
        points=2,
        kind="streak",
        period="day",
        required_count=10,
    ),
    dict(
        name="First 100 users to post today: 5",
        action="post",
        points=5,
        kind="every",
        period="day",
        awardee_cap=100,
        awardee_cap_scope="period",
        per_user_cap=1,
        allow_repeat_business_id=False,
    ),
    dict(
        name="Three check-ins a week: 3",
        action="checkin",
        points=3,
        kind="count",
        period="week",
        required_count=3,
        per_user_cap=1,
    ),
]


def demo_install(*, stdout) -> None:
    actions = {}
    for fields in ACTIONS:
        action, created = Action.all_objects.get_or_create(
            code=fields["code"], defaults={**fields, "status": Status.ACTIVE}
        )
        actions[action.code] = action
        if created:
            stdout.write(f"points: demo points task {action.code!r} created")
    for fields in RULES:
        defaults = {**fields, "action": actions[fields["action"]], "status": Status.ACTIVE}
        _rule, created = Rule.all_objects.get_or_create(name=fields["name"], defaults=defaults)
        if created:
            stdout.write(f"points: demo rule {fields['name']!r} created")
    if ActionRecord.objects.filter(action__in=actions.values()).exists():
        return  # history already there
    users = _demo_users()
    applied = 0
    for day, events in sorted(_history(users, actions).items()):
        with clock_at(timezone.make_aware(dt.datetime.combine(day, dt.time(21, 0)))):
            PendingEvent.objects.bulk_create(events, batch_size=1000)
            while batch := events_process_batch():
                applied += batch
    stdout.write(f"points: demo history of {applied} events for {len(users)} users applied")


def _demo_users() -> list:
    model = get_user_model()
    existing = {u.username: u for u in model.objects.filter(username__startswith="member")}
    missing = [
        model(username=f"member{i:03d}", email=f"member{i:03d}@example.com")
        for i in range(DEMO_USERS)
        if f"member{i:03d}" not in existing
    ]
    for user in missing:
        user.set_unusable_password()
    model.objects.bulk_create(missing)
    return list(model.objects.filter(username__startswith="member").order_by("pk"))


def _history(users, actions) -> dict[dt.date, list[PendingEvent]]:
    """Each user's check-ins and posts over the last DEMO_DAYS days, by day."""
    rng = random.Random(DEMO_SEED)
    today = timezone.localdate()
    events: dict[dt.date, list[PendingEvent]] = {}
    for user in users:
        habit = rng.random()
        for days_ago in range(DEMO_DAYS - 1, 0, -1):  # today is the live traffic's
            day = today - dt.timedelta(days=days_ago)
            moment = timezone.make_aware(dt.datetime.combine(day, dt.time(8 + rng.randrange(12), rng.randrange(60))))
            if rng.random() < habit:
                events.setdefault(day, []).append(
                    PendingEvent(
                        event_id=uuid.uuid4(),
                        user_id=user.pk,
                        action_id=actions["checkin"].pk,
                        occurred_at=moment,
                        location="/api/points/checkin/",
                    )
                )
            if rng.random() < 0.3:
                post_id = str(rng.randrange(1, 5000))
                events.setdefault(day, []).append(
                    PendingEvent(
                        event_id=uuid.uuid4(),
                        user_id=user.pk,
                        action_id=actions["post"].pk,
                        business_id=post_id,
                        occurred_at=moment + dt.timedelta(minutes=5),
                        location=f"/api/posts/{post_id}/publish/",
                    )
                )
    return events
