"""`make run`: one process dying no longer ends every process honcho supervises (deploy/keepalive.py)."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import wait_for

ROOT = Path(__file__).resolve().parents[2]
KEEPALIVE = ROOT / "deploy" / "keepalive.py"


def _emit(procfile: Path) -> str:
    return subprocess.run(
        [sys.executable, str(KEEPALIVE), "--emit", str(procfile)], check=True, capture_output=True, text=True
    ).stdout


def test_make_run_hands_honcho_every_procfile_line_wrapped():
    names = re.findall(r"^([A-Za-z0-9_-]+):", (ROOT / "deploy" / "Procfile").read_text(), re.MULTILINE)
    emitted = _emit(ROOT / "deploy" / "Procfile")

    assert re.findall(r"^([A-Za-z0-9_-]+):", emitted, re.MULTILINE) == names
    assert all("keepalive.py" in line for line in emitted.splitlines())
    makefile = (ROOT / "Makefile").read_text()
    assert "--procfile var/Procfile.run" in makefile and "--procfile deploy/Procfile" not in makefile


@pytest.mark.slow
def test_a_killed_process_is_restarted_and_named_while_the_others_stay_up(tmp_path):
    procfile = tmp_path / "Procfile"
    procfile.write_text("steady: echo steady pid $$; exec sleep 600\nflaky: echo flaky pid $$; exec sleep 600\n")
    (tmp_path / "Procfile.run").write_text(_emit(procfile))
    log_path = tmp_path / "honcho.log"
    with log_path.open("wb") as log:
        honcho = subprocess.Popen(  # noqa: S603 - honcho from this venv, fixed arguments
            [
                sys.executable,
                "-m",
                "honcho",
                "start",
                "--procfile",
                str(tmp_path / "Procfile.run"),
                "--app-root",
                str(tmp_path),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
    try:

        def pids(name: str) -> list[int]:
            return [int(p) for p in re.findall(rf"{name} pid (\d+)", log_path.read_text())]

        wait_for(lambda: pids("steady") and pids("flaky"), timeout=20, message="both processes to start")
        steady, flaky = pids("steady")[0], pids("flaky")[0]

        os.kill(flaky, signal.SIGKILL)

        wait_for(lambda: len(pids("flaky")) == 2, timeout=20, message="the killed process to be started again")
        output = log_path.read_text()
        assert re.search(r"keepalive: flaky was killed by SIGKILL after [\d.]+ s; restarting in 1 s", output)
        assert honcho.poll() is None
        os.kill(steady, 0)  # still the same process: nothing else was restarted
        assert pids("steady") == [steady]

        os.killpg(honcho.pid, signal.SIGTERM)  # Ctrl-C: everything stops, nothing restarts
        assert honcho.wait(20) is not None
        for pid in (steady, pids("flaky")[1]):
            wait_for(lambda pid=pid: not _alive(pid), timeout=10, message=f"pid {pid} to stop")
        assert len(pids("flaky")) == 2
    finally:
        if honcho.poll() is None:
            os.killpg(honcho.pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
