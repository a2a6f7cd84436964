"""What the chaos suite breaks: a PostgreSQL and a Redis of its own, and the portal's real processes on them.

The machine's shared services are never touched: the suite runs `initdb` into a temporary directory and starts
its own `postgres` and `redis-server` on free ports, so it may stop, restart and flush them at will.
"""

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from backoffice.embedded_redis import free_port
from tests.waiting import wait_for

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
PG_SERVICE_USER = "postgres"  # initdb and postgres refuse to run as root


def postgres_bin() -> Path | None:
    """The newest PostgreSQL server binaries installed from the distribution's packages, if any."""
    candidates = sorted(Path("/").glob(PG_BIN_GLOB.lstrip("/")), key=lambda p: int(p.parent.name))
    return candidates[-1] if candidates and (candidates[-1] / "initdb").exists() else None


def unavailable_reason() -> str | None:
    """Why the suite cannot run here, or None."""
    if postgres_bin() is None:
        return "no PostgreSQL server binaries (Debian's postgresql package)"
    if shutil.which("redis-server") is None:
        return "no redis-server on PATH"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_SERVICE_USER)
        except KeyError:
            return f"running as root without a '{PG_SERVICE_USER}' user to run PostgreSQL as"
    return None


def _as_service_user(args: list[str]) -> list[str]:
    return ["runuser", "-u", PG_SERVICE_USER, "--", *args] if os.geteuid() == 0 else args


@dataclass
class OwnPostgres:
    """A throwaway PostgreSQL cluster: fsync on, trust authentication, on a free port."""

    listen: tuple[str, ...] = ("127.0.0.1",)
    trusted_network: str | None = None  # e.g. "10.77.0.0/24" for worker hosts in network namespaces
    port: int = field(default_factory=free_port)

    def __post_init__(self):
        self.bin = postgres_bin()
        self.root = Path(tempfile.mkdtemp(prefix="chaos-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        if os.geteuid() == 0:
            shutil.chown(self.root, PG_SERVICE_USER)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(  # noqa: S603 - the distribution's binaries with fixed arguments
            _as_service_user([str(self.bin / args[0]), *args[1:]]), capture_output=True, text=True, check=check
        )

    def init(self) -> "OwnPostgres":
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
        conf = self.data / "postgresql.conf"
        with conf.open("a") as f:
            f.write(
                f"\nport = {self.port}\nlisten_addresses = '{','.join(self.listen)}'\n"
                f"unix_socket_directories = '{self.root}'\nmax_connections = 200\nfsync = on\n"
            )
        if self.trusted_network:
            with (self.data / "pg_hba.conf").open("a") as f:
                f.write(f"host all all {self.trusted_network} trust\n")
        return self.start()

    def start(self) -> "OwnPostgres":
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def restart(self, mode: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", mode, "-w", "-t", "60", "restart")

    def url(self, host: str = "127.0.0.1", db: str = "chaos") -> str:
        return f"postgres://postgres@{host}:{self.port}/{db}"

    def create_database(self, name: str = "chaos") -> None:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class OwnRedis:
    """A redis-server of the suite's own (no persistence, like the machine's), which it may kill and flush."""

    bind: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    popen: subprocess.Popen | None = None

    def __post_init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="chaos-redis-"))

    def start(self) -> "OwnRedis":
        self.popen = subprocess.Popen(  # noqa: S603
            [
                shutil.which("redis-server"),
                "--bind",
                self.bind,
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
                "--protected-mode",
                "no",
                "--maxmemory-policy",
                "noeviction",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self.is_up, timeout=10, message="redis-server to answer")
        return self

    def is_up(self) -> bool:
        import redis

        try:
            return redis.Redis(host=self.bind, port=self.port, socket_timeout=0.5).ping()
        except redis.RedisError:
            return False

    def kill(self) -> None:
        if self.popen and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(5)

    def flushdb(self) -> None:
        import redis

        redis.Redis(host=self.bind, port=self.port).flushdb()

    def url(self, host: str | None = None, db: int = 0) -> str:
        return f"redis://{host or self.bind}:{self.port}/{db}"

    def destroy(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def children_of(pid: int) -> list[int]:
    import psutil

    with contextlib.suppress(psutil.NoSuchProcess):
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    return []


def kill(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True
