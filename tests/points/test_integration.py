"""The real thing: the middleware in front, real worker processes behind, real Redis, the test database."""

import datetime as dt
import uuid

import httpx
import pytest
import time_machine
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from backoffice.embedded_redis import free_port, start
from points.models import ActionRecord, LedgerEntry, PendingEvent, RuleAwardees
from points.tasks import events_process_batch_task
from tests import processes
from tests.points.factories import ActionFactory, RuleFactory, UserFactory
from tests.points.helpers import assert_ledger_invariants, balance

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_seed_worked_example_through_the_middleware_and_a_real_worker(live_worker, checkin_action, settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    RuleFactory(action=checkin_action, name="Check-in", points=1, kind="every", period="day", per_user_cap=1)
    RuleFactory(action=checkin_action, name="Ten in a row", points=2, kind="streak", period="day", required_count=10)
    user = UserFactory()
    client = Client()
    client.force_login(user)

    for day in range(1, 11):
        with time_machine.travel(dt.datetime(2026, 3, day, 1, 0, tzinfo=dt.UTC), tick=False):
            assert client.post("/api/points/checkin/").json()["code"] == 0
            assert client.post("/api/points/checkin/").json()["code"] == 1  # the same day again earns nothing
        expected = day + (2 if day == 10 else 0)
        processes.wait_for(lambda e=expected: balance(user) == e, timeout=20, message=f"balance {expected}")

    assert ActionRecord.objects.count() == 10
    assert [(e.amount, e.reason) for e in LedgerEntry.objects.order_by("id")][-2:] == [
        (1, "Check-in"),
        (2, "Ten in a row"),
    ]
    assert PendingEvent.objects.count() == 0
    me = client.get("/api/points/me/").json()
    assert me["balance"] == 12
    assert_ledger_invariants()


def test_two_workers_racing_for_a_capped_rule_award_exactly_the_cap(transactional_db, redis_client, tmp_path):
    rule = RuleFactory(points=5, kind="every", period="none", awardee_cap=50, awardee_cap_scope="overall")
    users = UserFactory.create_batch(200)
    at = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)
    PendingEvent.objects.bulk_create(
        PendingEvent(event_id=uuid.uuid4(), user_id=u.pk, action_id=rule.action_id, occurred_at=at) for u in users
    )
    workers = [processes.worker(tmp_path, concurrency=2), processes.worker(tmp_path, concurrency=2)]
    try:
        for _ in range(40):  # small batches, so the two workers really interleave
            events_process_batch_task.apply_async(kwargs={"limit": 5})
        processes.wait_for(lambda: PendingEvent.objects.count() == 0, timeout=60, message="the backlog to drain")
    finally:
        for worker in workers:
            worker.stop()

    assert ActionRecord.objects.count() == 200
    assert LedgerEntry.objects.filter(rule=rule).count() == 50
    assert len({e.account_id for e in LedgerEntry.objects.all()}) == 50
    assert RuleAwardees.objects.get(rule=rule).awardees == 50
    assert_ledger_invariants()


def test_with_redis_stopped_requests_succeed_and_events_apply_once_it_returns(transactional_db, tmp_path):
    port = free_port()
    redis_url, redis_server = start(port=port)
    action = ActionFactory(method="GET", path_pattern=r"^/api/points/me/$")
    RuleFactory(action=action, points=1, kind="every", period="none")
    user = UserFactory()
    session = Client()
    session.force_login(user)
    assert session.session[SESSION_KEY] == str(user.pk)
    cookies = {"sessionid": session.cookies["sessionid"].value}

    web_port = free_port()
    web = processes.web(tmp_path, web_port, REDIS_URL=redis_url)
    worker = None  # started once Redis is back
    try:
        redis_server.terminate()
        redis_server.wait(5)
        with httpx.Client(base_url=f"http://127.0.0.1:{web_port}", cookies=cookies, timeout=10) as http:
            for _ in range(5):
                assert http.get("/api/points/me/").status_code == 200
            assert PendingEvent.objects.count() == 5
            assert balance(user) == 0

            _url, redis_server = start(port=port)  # Redis returns, empty: nothing was queued for these events
        every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.create(name="relay", task="points.outbox_relay", interval=every_second)
        worker = _worker_on(redis_url, tmp_path)
        beat = processes.beat(tmp_path, REDIS_URL=redis_url)
        try:
            processes.wait_for(
                lambda: PendingEvent.objects.count() == 0 and balance(user) == 5,
                timeout=40,
                interval=0.5,
                message="the relay to have the captured events applied",
            )
        except AssertionError:
            raise AssertionError(f"beat:\n{beat.log()[-3000:]}\nworker:\n{worker.log()[-3000:]}") from None
        finally:
            beat.stop()
    finally:
        if worker is not None:
            worker.stop()
        web.stop()
        redis_server.terminate()

    assert LedgerEntry.objects.count() == ActionRecord.objects.count()
    assert_ledger_invariants()


def _worker_on(redis_url: str, tmp_path) -> processes.Process:
    """A worker on another Redis than the test one (processes.worker pings it through the test Redis)."""
    proc = processes.Process(
        name="worker",
        args=processes.celery(
            "worker",
            "--queues",
            "default,points,orders",
            "--loglevel",
            "INFO",
            "--concurrency",
            "1",
            "--hostname",
            f"private-{uuid.uuid4().hex[:8]}@localhost",
            "--without-mingle",
            "--without-gossip",
        ),
        log_path=tmp_path / "private-worker.log",
        extra_env={"REDIS_URL": redis_url},
    ).start()
    processes.wait_for(lambda: " ready." in proc.log(), timeout=30, message="the private worker to start")
    return proc
