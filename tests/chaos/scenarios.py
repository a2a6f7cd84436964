"""The chaos scenarios: each breaks one thing under load, then counts what was promised against what happened.

A scenario returns its figures (requests, failed, events expected, applied, duplicated, recovery seconds); it
raises `Broken` when anything was lost or applied twice, or when a process did not recover on its own.
Run them with `make chaos` (`python -m tests.chaos`); `--short` is the version CI runs.
"""

import datetime as dt
import random
import secrets
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import redis
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django.db.models import Count, Sum
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

from tests import processes
from tests.chaos.infra import OwnPostgres, OwnRedis, children_of, kill, wait_for

RELAY_EVERY_S = 2  # the outbox relay's interval during the suite (5 s by default)


class Broken(AssertionError):
    """A promise was broken: something lost, applied twice, or a process that did not come back."""


@dataclass
class Size:
    events: int  # captured events drained while workers are killed
    kill_every: tuple[float, float]  # seconds between SIGKILLs
    rate: float  # check-in requests per second during outages
    redis_down_s: float
    postgres_down_s: float
    orders: int
    beat_kills: int
    beat_slot_s: int  # the interval of the schedules whose slots must never be sent twice
    fault_requests: int
    pause: float  # seconds of steady traffic between two faults
    drain_timeout: float  # once a fault is over, everything promised must be applied within this


FULL = Size(
    events=10_000,
    kill_every=(2, 5),
    rate=25,
    redis_down_s=60,
    postgres_down_s=30,
    orders=400,
    beat_kills=3,
    beat_slot_s=20,
    fault_requests=200,
    pause=3,
    drain_timeout=180,
)
SHORT = Size(
    events=1_500,
    kill_every=(1, 2),
    rate=10,
    redis_down_s=6,
    postgres_down_s=3,
    orders=60,
    beat_kills=1,
    beat_slot_s=10,
    fault_requests=40,
    pause=1.5,
    drain_timeout=60,
)


@dataclass
class Figures:
    scenario: str
    values: dict = field(default_factory=dict)

    def __setitem__(self, key, value):
        self.values[key] = value

    def __getitem__(self, key):
        return self.values[key]

    def line(self) -> str:
        return f"chaos {self.scenario}: " + ", ".join(f"{k} {v}" for k, v in self.values.items())


@dataclass
class Stack:
    """The portal's processes on the suite's own PostgreSQL and Redis, restarted when they die (as systemd does)."""

    tmp: object
    postgres: OwnPostgres
    redis: OwnRedis
    web: processes.Process | None = None
    workers: list = field(default_factory=list)
    beats: list = field(default_factory=list)
    restarts: Counter = field(default_factory=Counter)

    def start(self, *, workers: int = 1, beats: int = 1) -> "Stack":
        port = _free_port()
        self.web = processes.web(self.tmp, port)
        self.web.url = f"http://127.0.0.1:{port}"
        self.workers = [self._worker() for _ in range(workers)]
        self.beats = [processes.beat(self.tmp, label=f"beat{i}") for i in range(beats)]
        return self

    def _worker(self) -> processes.Process:
        """A worker as deploy/Procfile starts it; pinged over a fresh broker connection, since this process's
        pooled ones may predate a Redis restart."""
        from backoffice.celery import app

        name = f"chaos-{uuid.uuid4().hex[:8]}@localhost"
        proc = processes.Process(
            name="worker",
            args=processes.celery(
                "worker",
                "--queues",
                "default,points,orders",
                "--events",
                "--loglevel",
                "INFO",
                "--concurrency",
                "2",
                "--hostname",
                name,
                "--without-mingle",
                "--without-gossip",
            ),
            log_path=self.tmp / f"worker-{name}.log",
        ).start()

        def answers() -> bool:
            try:
                with app.connection_for_write() as conn:
                    return bool(app.control.ping(destination=[name], timeout=0.5, connection=conn))
            except (OSError, redis.RedisError):
                return False

        wait_for(lambda: proc.is_running() and answers(), timeout=60, message=f"worker {name} to answer a ping")
        return proc

    def supervise(self) -> int:
        """Restart any worker whose main process died, as systemd's Restart=always does; returns how many."""
        restarted = 0
        for i, proc in enumerate(self.workers):
            if not proc.is_running():
                proc.stop()
                self.workers[i] = self._worker()
                self.restarts["worker"] += 1
                restarted += 1
        return restarted

    def all_alive(self) -> bool:
        """Web and beat must ride out every outage in place; a worker that dies is restarted and counted."""
        return all(p.is_running() for p in [self.web, *self.beats])

    def stop(self) -> None:
        for proc in [*self.beats, *self.workers, self.web]:
            if proc is not None:
                proc.stop()


def _free_port() -> int:
    from backoffice.embedded_redis import free_port

    return free_port()


# --- data ---------------------------------------------------------------------------------------------------


def checkin_rule():
    """The seed's check-in: 1 point, at most once a day, captured from POST /api/points/checkin/."""
    from points.models import Action, Rule

    action, _ = Action.objects.get_or_create(
        code="chaos-checkin",
        defaults=dict(
            name="Check-in",
            method="POST",
            path_pattern=r"^/api/points/checkin/$",
            success_field="code",
            success_value="0",
            status="active",
        ),
    )
    Rule.objects.get_or_create(
        name="Chaos check-in: 1 point",
        defaults=dict(action=action, points=1, kind="every", period="day", per_user_cap=1, status="active"),
    )
    return action


def users_with_sessions(prefix: str, n: int) -> list[dict]:
    """n users, each with a database session and a CSRF secret, as a browser would hold them."""
    User = get_user_model()
    User.objects.bulk_create([User(username=f"{prefix}-{i}", password="!") for i in range(n)])
    out = []
    for user in User.objects.filter(username__startswith=f"{prefix}-").order_by("id"):
        session = SessionStore()
        session["_auth_user_id"] = str(user.pk)
        session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
        session["_auth_user_hash"] = user.get_session_auth_hash()
        session.create()
        out.append({"id": user.pk, "session": session.session_key, "csrf": secrets.token_hex(16)})
    return out


class CheckinTraffic:
    """Signed-in users checking in at a steady rate over HTTP; records each answer."""

    def __init__(self, base_url: str, users: list[dict], rate: float):
        self.base_url, self.users, self.rate = base_url, list(users), rate
        self.answers: dict[int, list[str]] = {}  # user id -> "earned" / "already" / "failed:<why>"
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=16)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def checkin(self, user: dict) -> str:
        cookies = {"sessionid": user["session"], "csrftoken": user["csrf"]}
        try:
            with httpx.Client(base_url=self.base_url, cookies=cookies, timeout=15) as http:
                response = http.post("/api/points/checkin/", headers={"X-CSRFToken": user["csrf"]})
        except httpx.HTTPError as exc:
            outcome = f"failed:{type(exc).__name__}"
        else:
            if response.status_code == 200:
                outcome = {0: "earned", 1: "already"}.get(response.json().get("code"), f"failed:{response.text}")
            else:
                outcome = f"failed:{response.status_code}"
        self.answers.setdefault(user["id"], []).append(outcome)
        return outcome

    def _run(self):
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set() and self.users:
            self._pool.submit(self.checkin, self.users.pop())
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def start(self) -> "CheckinTraffic":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True)

    def retry_failed(self) -> None:
        """Users whose check-in failed try again once the fault is over, as people do."""
        for user_id, outcomes in list(self.answers.items()):
            if outcomes[-1].startswith("failed"):
                user = next(u for u in self._all if u["id"] == user_id)
                self.checkin(user)

    def counts(self) -> Counter:
        return Counter(o[-1].split(":")[0] for o in self.answers.values())


def checkin_traffic(stack: Stack, users: list[dict], rate: float) -> CheckinTraffic:
    traffic = CheckinTraffic(stack.web.url, users, rate)
    traffic._all = list(users)
    return traffic


# --- checks -----------------------------------------------------------------------------------------------


def outbox_drained() -> bool:
    from points.models import PendingEvent

    return not PendingEvent.objects.exists()


def ledger_consistent() -> list[str]:
    """Every account equals the sum of its entries and its last balance_after; no idempotency key twice."""
    from points.models import Account, LedgerEntry

    problems = []
    sums = dict(LedgerEntry.objects.values_list("account_id").annotate(total=Sum("amount")))
    for account_id, balance in Account.objects.values_list("id", "balance"):
        if sums.get(account_id, 0) != balance:
            problems.append(f"account {account_id}: balance {balance} != ledger {sums.get(account_id, 0)}")
    twice = LedgerEntry.objects.values("idempotency_key").annotate(n=Count("id")).filter(n__gt=1).count()
    if twice:
        problems.append(f"{twice} idempotency keys with more than one entry")
    return problems


def checkins_settled(user_ids: list[int], action) -> dict:
    """For these users: check-ins (business rows), events recorded, points held."""
    from points.models import Account, ActionRecord, CheckIn

    checked_in = set(CheckIn.objects.filter(user_id__in=user_ids).values_list("user_id", flat=True))
    records = Counter(
        ActionRecord.objects.filter(user_id__in=user_ids, action=action).values_list("user_id", flat=True)
    )
    balances = dict(Account.objects.filter(user_id__in=user_ids).values_list("user_id", "balance"))
    return {"checked_in": checked_in, "records": records, "balances": balances}


def judge_checkins(fig: Figures, traffic: CheckinTraffic, action, *, timeout: float) -> None:
    """Every 2xx "earned" answer is one event and one point; no business action is left without its event."""
    user_ids = list(traffic.answers)
    earned = {u for u, o in traffic.answers.items() if "earned" in o}

    def settled():
        state = checkins_settled(user_ids, action)
        return outbox_drained() and all(state["balances"].get(u, 0) >= 1 for u in earned) and state

    started = time.monotonic()
    try:
        state = wait_for(settled, timeout=timeout, interval=0.5, message="every earned check-in to be applied")
    except AssertionError:
        state = checkins_settled(user_ids, action)
    fig["drain_s"] = round(time.monotonic() - started, 1)
    counts = traffic.counts()
    fig["requests"] = sum(len(o) for o in traffic.answers.values())
    fig["failed"] = sum(1 for o in traffic.answers.values() for x in o if x.startswith("failed"))
    fig["events_expected"] = len(state["checked_in"])
    fig["applied"] = sum(1 for u in state["checked_in"] if state["records"].get(u, 0) >= 1)
    fig["duplicated"] = sum(1 for u in user_ids if state["records"].get(u, 0) > 1 or state["balances"].get(u, 0) > 1)
    lost_answers = [u for u in earned if state["balances"].get(u, 0) < 1]
    lost_events = [u for u in state["checked_in"] if state["records"].get(u, 0) < 1]
    still_failed = counts.get("failed", 0)
    problems = ledger_consistent()
    if lost_answers:
        problems.append(f"{len(lost_answers)} users were told 'Checked in.' and earned nothing")
    if lost_events:
        problems.append(f"{len(lost_events)} check-ins have no points event")
    if fig["duplicated"]:
        problems.append(f"{fig['duplicated']} users were awarded twice")
    if still_failed:
        problems.append(f"{still_failed} users still fail to check in after the fault ended")
    if problems:
        raise Broken(f"{fig.line()}\n" + "\n".join(problems))


def set_relay_interval(seconds: int) -> None:
    every, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.filter(task__in=["points.outbox_relay", "orders.expire_overdue"]).update(interval=every)
    PeriodicTasks.update_changed()


def captured_backlog(code: str, n: int):
    """An action with a point for every event, 500 users, and n of their events captured and waiting."""
    from points.models import Action, PendingEvent, Rule

    action = Action.objects.create(
        code=code, name=code, method="POST", path_pattern=rf"^/api/{code}/(?P<business_id>\d+)/$", status="active"
    )
    rule = Rule.objects.create(
        name=f"{code}: every event", action=action, points=1, kind="every", period="none", status="active"
    )
    User = get_user_model()
    users = User.objects.bulk_create([User(username=f"{code}-{i}", password="!") for i in range(500)])
    at = timezone.now()
    PendingEvent.objects.bulk_create(
        [
            PendingEvent(
                event_id=uuid.uuid4(),
                user_id=users[i % len(users)].pk,
                action_id=action.pk,
                business_id=str(i),
                occurred_at=at,
            )
            for i in range(n)
        ],
        batch_size=2000,
    )
    return action, rule


def _settle_after_outage(fig: Figures, stack: Stack, traffic, action, size: Size, *, back: float, fault: str):
    """The fault is over: stop the traffic, restart dead workers, let failed users retry, then judge."""
    traffic.stop()
    connection.close()
    fig["worker_restarts"] = stack.supervise()
    traffic.retry_failed()
    judge_checkins(fig, traffic, action, timeout=size.drain_timeout)
    fig["recovery_s"] = round(time.monotonic() - back, 1)
    if not stack.all_alive():
        raise Broken(f"{fig.line()}\na process died with {fault}: {_dead(stack)}")
    return fig


# --- scenarios --------------------------------------------------------------------------------------------


def worker_kills(stack: Stack, size: Size) -> Figures:
    """SIGKILL worker main processes and pool children every few seconds while captured events drain."""
    from points.models import ActionRecord, LedgerEntry, PendingEvent

    fig = Figures("worker_kills")
    action, rule = captured_backlog("chaos-drain", size.events)
    from points.tasks import outbox_relay_task

    outbox_relay_task.delay()
    started = time.monotonic()
    kills = Counter()
    while PendingEvent.objects.exists() and time.monotonic() - started < size.drain_timeout:
        time.sleep(random.uniform(*size.kill_every))
        stack.supervise()
        victim = random.choice(stack.workers)
        pool = children_of(victim.popen.pid)
        if pool and random.random() < 0.5:
            kills["pool_child"] += kill(random.choice(pool))
        else:
            kills["main"] += kill(victim.popen.pid)
    stack.supervise()
    fig["kills_main"], fig["kills_pool_child"] = kills["main"], kills["pool_child"]
    fig["events_expected"] = size.events
    fig["drain_s"] = round(time.monotonic() - started, 1)
    fig["applied"] = ActionRecord.objects.filter(action=action, business_id__regex=r"^\d+$").count()
    awarded = LedgerEntry.objects.filter(rule=rule).count()
    fig["duplicated"] = max(awarded - size.events, 0) + (
        fig["applied"] - len(set(ActionRecord.objects.filter(action=action).values_list("business_id", flat=True)))
    )
    problems = ledger_consistent()
    if fig["applied"] != size.events or awarded != size.events:
        problems.append(f"expected {size.events} events and awards, got {fig['applied']} and {awarded}")
    if problems:
        raise Broken(f"{fig.line()}\n" + "\n".join(problems))
    return fig


def redis_down(stack: Stack, size: Size) -> Figures:
    """Redis killed under steady check-ins: every request still succeeds, every event applies once it returns."""
    fig = Figures("redis_down")
    action = checkin_rule()
    n = int(size.rate * (size.redis_down_s + 2 * size.pause + 5))
    traffic = checkin_traffic(stack, users_with_sessions("redis", n), size.rate).start()
    time.sleep(size.pause)
    stack.redis.kill()
    time.sleep(size.redis_down_s)
    stack.redis.start()
    return _settle_after_outage(fig, stack, traffic, action, size, back=time.monotonic(), fault="Redis")


def postgres_restarts(stack: Stack, size: Size) -> Figures:
    """PostgreSQL restarted fast, immediately, and stopped for a while under steady check-ins."""
    fig = Figures("postgres_restarts")
    action = checkin_rule()
    n = int(size.rate * (size.postgres_down_s + 5 * size.pause + 15))
    users = users_with_sessions("pg", n)
    connection.close()
    traffic = checkin_traffic(stack, users, size.rate).start()
    time.sleep(size.pause)
    stack.postgres.restart("fast")
    time.sleep(size.pause)
    stack.postgres.restart("immediate")
    time.sleep(size.pause)
    stack.postgres.stop("fast")
    time.sleep(size.postgres_down_s)
    stack.postgres.start()
    back = time.monotonic()
    time.sleep(size.pause)
    return _settle_after_outage(fig, stack, traffic, action, size, back=back, fault="PostgreSQL")


def broker_flush(stack: Stack, size: Size) -> Figures:
    """Redis flushed while orders wait to expire: the sweeper expires every one, restoring all exactly once."""
    from orders.models import Coupon, Order, Product, UserCoupon
    from orders.services import LineRequest, order_place
    from points.models import Account, LedgerEntry
    from points.services import points_adjust

    fig = Figures("broker_flush")
    product = Product.objects.create(sku="CHAOS-SEATS", name="Chaos seats", price="20.00", capacity=size.orders)
    coupon = Coupon.objects.create(code="CHAOS5", kind=Coupon.Kind.AMOUNT, value="5.00")
    User = get_user_model()
    users = User.objects.bulk_create([User(username=f"buyer-{i}", password="!") for i in range(size.orders)])
    for user in users:
        points_adjust(user_id=user.pk, amount=100, reason="chaos balance")
        UserCoupon.objects.create(user=user, coupon=coupon)
    orders = [
        order_place(user=user, lines=[LineRequest(sku=product.sku, quantity=1)], coupon_code=coupon.code, points=30)
        for user in users
    ]
    fig["orders"] = len(orders)
    # Their ETA messages are in Redis now; bring the deadline close, then lose every message.
    Order.objects.filter(pk__in=[o.pk for o in orders]).update(expires_at=timezone.now() + dt.timedelta(seconds=2))
    stack.redis.flushdb()
    flushed = time.monotonic()

    def all_expired():
        return not Order.objects.filter(pk__in=[o.pk for o in orders]).exclude(status="expired").exists()

    try:
        wait_for(all_expired, timeout=size.drain_timeout, interval=0.5, message="the sweeper to expire every order")
    finally:
        fig["recovery_s"] = round(time.monotonic() - flushed, 1)
    product.refresh_from_db()
    balances = list(Account.objects.filter(user__in=users).values_list("balance", flat=True))
    refunds = LedgerEntry.objects.filter(account__user__in=users, kind="refund").count()
    held = UserCoupon.objects.filter(user__in=users, coupon=coupon)
    fig["seats_taken"] = product.seats_taken
    fig["refunds"] = refunds
    fig["duplicated"] = max(refunds - len(orders), 0)
    problems = ledger_consistent()
    if product.seats_taken != 0:
        problems.append(f"{product.seats_taken} seats still taken")
    if refunds != len(orders) or set(balances) != {100}:
        problems.append(f"{refunds} refunds for {len(orders)} orders; balances {sorted(Counter(balances).items())}")
    if held.exclude(order__isnull=True).exists() if hasattr(UserCoupon, "order") else False:
        problems.append("coupons still reserved")
    if problems:
        raise Broken(f"{fig.line()}\n" + "\n".join(problems))
    return fig


BEAT_LOCK_TTL_S = 3  # as __main__ sets BEAT_LOCK_TTL_SECONDS for the suite's beats


def beat_failover(stack: Stack, size: Size) -> Figures:
    """The beat holding the lock is killed just after a send: the one taking over never sends that slot again."""
    from django_celery_results.models import TaskResult

    fig = Figures("beat_failover")
    every, _ = IntervalSchedule.objects.get_or_create(every=size.beat_slot_s, period=IntervalSchedule.SECONDS)
    names = [f"chaos-slot-{i}" for i in range(3)]
    for name in names:
        PeriodicTask.objects.create(
            name=name, task="backoffice.ping", kwargs=f'{{"message": "{name}"}}', interval=every
        )
    PeriodicTasks.update_changed()
    kills = 0
    for _ in range(size.beat_kills):
        sent_before = {id(b): _slots_sent(b) for b in stack.beats}

        def sender(before=sent_before):
            return next((b for b in stack.beats if b.is_running() and _slots_sent(b) > before.get(id(b), 0)), None)

        leader = wait_for(sender, timeout=size.beat_slot_s * 3, interval=0.01, message="a beat to send a chaos slot")
        # Kill it just after the send reached Redis, before a slow write of the run time could land.
        time.sleep(random.uniform(0.2, 1.5))
        kill(leader.popen.pid)
        leader.stop()
        stack.beats.remove(leader)
        stack.beats.append(processes.beat(stack.tmp, label=f"beat-{uuid.uuid4().hex[:6]}"))
        kills += 1
    time.sleep(size.beat_slot_s + BEAT_LOCK_TTL_S + 2)  # long enough for any resend to be sent and stored
    times: dict[str, list] = {}
    for name, at in TaskResult.objects.filter(periodic_task_name__in=names).values_list(
        "periodic_task_name", "date_created"
    ):
        times.setdefault(name, []).append(at)
    twice = 0
    for stamps in times.values():
        stamps.sort()
        twice += sum(
            1 for a, b in zip(stamps, stamps[1:], strict=False) if (b - a).total_seconds() < size.beat_slot_s * 0.75
        )
    fig["leader_kills"] = kills
    fig["sends"] = sum(len(s) for s in times.values())
    fig["duplicated"] = twice
    PeriodicTask.objects.filter(name__in=names).delete()
    PeriodicTasks.update_changed()
    if twice:
        raise Broken(f"{fig.line()}\n{twice} slots were sent again by the beat that took over")
    return fig


def _slots_sent(beat) -> int:
    return beat.log().count("Sending due task chaos-slot")


def write_fault(stack: Stack, size: Size) -> Figures:
    """A fault between a business write and its event: no 2xx without a durable event, no action left unrecorded."""
    fig = Figures("write_fault")
    action = checkin_rule()
    users = users_with_sessions("fault", size.fault_requests)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE OR REPLACE FUNCTION chaos_outbox_fault() RETURNS trigger AS $$
            BEGIN
              IF random() < 0.4 THEN RAISE EXCEPTION 'chaos: outbox insert refused'; END IF;
              RETURN NEW;
            END $$ LANGUAGE plpgsql;
            CREATE TRIGGER chaos_outbox_fault BEFORE INSERT ON points_pendingevent
              FOR EACH ROW EXECUTE FUNCTION chaos_outbox_fault();
            """
        )
    traffic = checkin_traffic(stack, users, size.rate).start()
    wait_for(lambda: not traffic.users, timeout=120, message="every fault request to be sent")
    traffic.stop()
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER chaos_outbox_fault ON points_pendingevent")
    fig["faults_seen"] = traffic.counts().get("failed", 0)
    traffic.retry_failed()
    judge_checkins(fig, traffic, action, timeout=size.drain_timeout)
    return fig


def _dead(stack: Stack) -> str:
    return ", ".join(p.name for p in [stack.web, *stack.workers, *stack.beats] if not p.is_running())


SCENARIOS = {
    "worker_kills": worker_kills,
    "redis_down": redis_down,
    "postgres_restarts": postgres_restarts,
    "broker_flush": broker_flush,
    "beat_failover": beat_failover,
    "write_fault": write_fault,
}
