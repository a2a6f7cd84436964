"""Keep one Procfile process up under `make run`: restart it when it dies, saying which one and why.

honcho ends every process it supervises as soon as one exits (a worker whose pool child is killed in its first
seconds exits with "Could not start worker processes"). `make run` therefore starts each Procfile line through
this wrapper (see `--emit`): when the command exits on its own, the wrapper prints its name, exit status or signal
and how long it ran, waits a growing back-off (1 s doubling to 30 s, back to 1 s after a minute of uptime) and
starts it again; the other processes never notice. Ctrl-C (honcho's SIGTERM to the process group) stops the
command and the wrapper without a restart: signal the group (`kill -TERM -PGID`), not the wrapper alone.
Production supervisors (systemd, supervisord, compose) restart on their own, so the Procfile stays plain.

    python deploy/keepalive.py --emit deploy/Procfile > var/Procfile.run    # what `make run` hands honcho
    python deploy/keepalive.py deploy/Procfile worker                       # one wrapped process
"""

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

PROCFILE_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")
FIRST_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 30.0
HEALTHY_AFTER_SECONDS = 60.0  # a process that ran this long starts its next back-off from the first delay


def procfile_entries(path: Path) -> dict[str, str]:
    entries = {}
    for line in path.read_text().splitlines():
        match = PROCFILE_LINE.match(line.strip())
        if match:
            entries[match.group(1)] = match.group(2)
    return entries


def emit(path: Path) -> str:
    """A Procfile with every line of `path` wrapped by this script (same names, same order)."""
    script = shlex.quote(str(Path(__file__).resolve()))
    return "".join(f"{name}: exec python {script} {shlex.quote(str(path))} {name}\n" for name in procfile_entries(path))


def _say(name: str, message: str) -> None:
    print(f"keepalive: {name} {message}", file=sys.stderr, flush=True)


def _describe(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with status {returncode}"


def supervise(name: str, command: str) -> int:
    stopping = False

    def stop(signum, frame):
        # Not passed on: the command shares this wrapper's process group, which honcho (and a terminal's Ctrl-C)
        # signals as a whole, and a second SIGTERM would turn a Celery worker's warm shutdown into a cold one.
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    delay = FIRST_DELAY_SECONDS
    restarts = 0
    while True:
        started = time.monotonic()
        # Same process group as this wrapper, so honcho's killpg on Ctrl-C reaches the command and its children.
        child = subprocess.Popen(["/bin/sh", "-c", command])  # noqa: S603 - a line of our own Procfile
        returncode = child.wait()
        if stopping:
            return 0
        ran = time.monotonic() - started
        if ran >= HEALTHY_AFTER_SECONDS:
            delay = FIRST_DELAY_SECONDS
        restarts += 1
        _say(name, f"{_describe(returncode)} after {ran:.1f} s; restarting in {delay:g} s (restart {restarts})")
        deadline = time.monotonic() + delay
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.1)
        if stopping:
            return 0
        delay = min(delay * 2, MAX_DELAY_SECONDS)


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--emit":
        sys.stdout.write(emit(Path(argv[1])))
        return 0
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    procfile, name = Path(argv[0]), argv[1]
    entries = procfile_entries(procfile)
    if name not in entries:
        print(f"keepalive: no process {name!r} in {procfile}", file=sys.stderr)
        return 2
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return supervise(name, entries[name])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
