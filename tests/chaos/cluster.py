"""`make cluster-smoke`: workers on several hosts drain one backlog, and losing a host's link loses nothing.

    python -m tests.chaos.cluster [--hosts 3] [--events 10000]

The hosts are network namespaces on this machine (iproute2 `ip netns`, a veth pair each, on a bridge), so every
worker reaches PostgreSQL and Redis over its own address, never loopback. PostgreSQL and Redis are the suite's own
(see infra.py), listening on the bridge address for the run only. Mid-run one host's link is cut: the events it had
claimed roll back when PostgreSQL drops its connection, its unacknowledged message waits in Redis for the visibility
timeout, and the outbox relay republishes what is left, so the others finish its share. Everything made is removed.
Needs root (network namespaces). Exits 0 when every event was applied exactly once, 1 otherwise, 2 when it cannot
run here.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BRIDGE = "bochaos0"
SUBNET = "10.77.0"
HOST_ADDRESS = f"{SUBNET}.1"  # the bridge's address: where PostgreSQL and Redis listen for the run
BATCH_LIMIT = 100  # events per batch task: small, so every host gets a share of a 10,000-event backlog
VISIBILITY_TIMEOUT_S = 20  # Redis hands a lost host's unacknowledged message to another worker after this


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)  # noqa: S603,S607


class Hosts:
    """n network namespaces on a bridge: host i is `bochaos-h<i>` at 10.77.0.<10+i>."""

    def __init__(self, n: int):
        self.names = [f"bochaos-h{i}" for i in range(1, n + 1)]

    def address(self, i: int) -> str:
        return f"{SUBNET}.{11 + i}"

    def veth(self, i: int) -> str:
        return f"bochv{i + 1}"

    def create(self) -> "Hosts":
        self.destroy()  # leftovers of an interrupted run
        _ip("link", "add", BRIDGE, "type", "bridge")
        _ip("addr", "add", f"{HOST_ADDRESS}/24", "dev", BRIDGE)
        _ip("link", "set", BRIDGE, "up")
        for i, ns in enumerate(self.names):
            inner = f"bochp{i + 1}"
            _ip("netns", "add", ns)
            _ip("link", "add", self.veth(i), "type", "veth", "peer", "name", inner)
            _ip("link", "set", inner, "netns", ns)
            _ip("link", "set", self.veth(i), "master", BRIDGE)
            _ip("link", "set", self.veth(i), "up")
            _ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", inner)
            _ip("-n", ns, "link", "set", inner, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        return self

    def cut(self, i: int) -> None:
        _ip("link", "set", self.veth(i), "down")

    def destroy(self) -> None:
        for i, ns in enumerate(self.names):
            _ip("link", "del", self.veth(i), check=False)
            _ip("netns", "del", ns, check=False)
        _ip("link", "del", BRIDGE, check=False)


def unavailable_reason() -> str | None:
    from tests.chaos.infra import unavailable_reason as services_missing

    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "no iproute2 (ip)"
    probe = _ip("netns", "add", "bochaos-probe", check=False)
    _ip("netns", "del", "bochaos-probe", check=False)
    if probe.returncode != 0:
        return f"cannot make a network namespace here: {probe.stderr.strip()}"
    return services_missing()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.cluster", description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args(argv)
    reason = unavailable_reason()
    if reason:
        print(f"cluster-smoke: cannot run here: {reason}")
        return 2

    from tests.chaos.infra import OwnPostgres, OwnRedis, wait_for

    hosts = Hosts(args.hosts).create()
    postgres = redis = None
    workers = []
    beat = None
    try:
        postgres = OwnPostgres(listen=("127.0.0.1", HOST_ADDRESS), trusted_network=f"{SUBNET}.0/24").init()
        # A host that vanishes mid-transaction must not hold its rows for TCP's default two hours.
        with (postgres.data / "postgresql.conf").open("a") as conf:
            conf.write("tcp_keepalives_idle = 3\ntcp_keepalives_interval = 1\ntcp_keepalives_count = 3\n")
            conf.write("idle_in_transaction_session_timeout = '10s'\n")
        postgres.restart("fast")
        postgres.create_database()
        redis = OwnRedis(bind=HOST_ADDRESS).start()
        tmp = Path(tempfile.mkdtemp(prefix="cluster-logs-"))
        os.environ.update(
            DJANGO_SETTINGS_MODULE="backoffice.settings",
            DATABASE_URL=postgres.url(host=HOST_ADDRESS),
            REDIS_URL=redis.url(),
            DEBUG="1",
            SECRET_KEY=os.environ.get("SECRET_KEY") or "cluster-smoke-throwaway-key-" + "x" * 40,
            CELERY_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT_S),
        )
        import django

        django.setup()
        from django.core.management import call_command

        from tests import processes
        from tests.chaos import scenarios

        call_command("migrate", verbosity=0)
        call_command("setup_portal", verbosity=0)
        scenarios.set_relay_interval(scenarios.RELAY_EVERY_S)
        action, rule = scenarios.captured_backlog("cluster", args.events)
        print(
            f"cluster-smoke: {args.hosts} hosts on {SUBNET}.0/24, PostgreSQL and Redis at {HOST_ADDRESS}; "
            f"{args.events} captured events; logs in {tmp}",
            flush=True,
        )

        for i, ns in enumerate(hosts.names):
            proc = processes.Process(
                name=ns,
                args=[
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    *processes.celery(
                        "worker",
                        "--queues",
                        "default,points,orders",
                        "--loglevel",
                        "INFO",
                        "--concurrency",
                        "2",
                        "--hostname",
                        f"host{i + 1}@cluster",
                        "--without-mingle",
                        "--without-gossip",
                    ),
                ],
                log_path=tmp / f"{ns}.log",
            ).start()
            workers.append(proc)
        for proc in workers:
            wait_for(lambda p=proc: " ready." in p.log(), timeout=60, message=f"{proc.name}'s worker to start")
        beat = processes.beat(tmp)
        from points.tasks import events_process_batch_task

        started = time.monotonic()
        for _ in range(-(-args.events // BATCH_LIMIT)):
            events_process_batch_task.apply_async(kwargs={"limit": BATCH_LIMIT})

        victim = len(workers) // 2  # the middle host loses its link a third of the way through

        def a_third_done() -> bool:
            return _applied(workers[victim]) > 0 and sum(_applied(p) for p in workers) >= args.events // 3

        wait_for(a_third_done, timeout=120, interval=0.02, message="a third of the backlog to be applied")
        clients = _database_clients()
        print(f"cluster-smoke: PostgreSQL sees clients from {', '.join(clients)}", flush=True)
        hosts.cut(victim)
        cut_at = time.monotonic()
        print(f"cluster-smoke: cut {workers[victim].name}'s link after {cut_at - started:.1f} s", flush=True)

        from points.models import ActionRecord, LedgerEntry, PendingEvent

        wait_for(
            lambda: not PendingEvent.objects.exists(),
            timeout=240,
            interval=0.5,
            message="the backlog to drain on the remaining hosts",
        )
        drained = time.monotonic()
        shares = {proc.name: _applied(proc) for proc in workers}
        applied = ActionRecord.objects.filter(action=action).count()
        awarded = LedgerEntry.objects.filter(rule=rule).count()
        distinct = ActionRecord.objects.filter(action=action).values("business_id").distinct().count()
        problems = scenarios.ledger_consistent()
        print(f"cluster-smoke: drained in {drained - started:.1f} s ({drained - cut_at:.1f} s after the cut)")
        for name, count in shares.items():
            print(
                f"cluster-smoke: {name}: applied {count} events (as its log shows; a cut host's last batch may "
                "have rolled back)"
            )
        print(
            f"cluster-smoke: events expected {args.events}, applied {applied}, awarded {awarded}, "
            f"duplicated {applied - distinct}"
        )
        if applied != args.events or awarded != args.events or distinct != args.events:
            problems.append(f"expected {args.events} events applied and awarded once each")
        if not {hosts.address(i) for i in range(len(workers))} <= set(clients):
            problems.append("not every host reached PostgreSQL over its own address")
        if sum(1 for name, count in shares.items() if count > 0) < len(workers):
            problems.append("a host applied nothing: the backlog was not shared")
        if problems:
            print("cluster-smoke: FAILED\n" + "\n".join(problems))
            return 1
        print(f"cluster-smoke: passed, {len(workers)} hosts, nothing lost or applied twice")
        return 0
    finally:
        for proc in [*workers, beat]:
            if proc is not None:
                proc.stop()
        hosts.destroy()
        if redis is not None:
            redis.destroy()
        if postgres is not None:
            postgres.destroy()


def _database_clients() -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT host(client_addr) FROM pg_stat_activity WHERE client_addr IS NOT NULL")
        return sorted(row[0] for row in cursor.fetchall())


APPLIED_LINE = re.compile(r"Task points\.events_process_batch\[[^\]]+\] succeeded in [0-9.e-]+s: (\d+)")


def _applied(proc) -> int:
    return sum(int(n) for n in APPLIED_LINE.findall(proc.log()))


if __name__ == "__main__":
    sys.exit(main())
