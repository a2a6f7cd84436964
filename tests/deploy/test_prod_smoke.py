"""`make prod-smoke` as a test: the production shape started for real and driven over HTTPS (deploy/prod_smoke.py).

Runs where PostgreSQL is configured (DATABASE_URL) and nginx and PgBouncer are installed or installable (root).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
        reason="the production shape runs on PostgreSQL (DATABASE_URL)",
    ),
    pytest.mark.skipif(
        os.geteuid() != 0 and not all(shutil.which(b, path="/usr/sbin:/usr/bin") for b in ("nginx", "pgbouncer")),
        reason="needs Debian's nginx and pgbouncer, or root to install them",
    ),
]


def test_the_production_shape_starts_answers_over_https_and_stops_cleanly():
    run = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "prod_smoke.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    summary = "\n".join(line for line in run.stdout.splitlines() if line.startswith("prod-smoke"))

    assert run.returncode == 0, f"{run.stdout[-12000:]}\n{run.stderr[-4000:]}"
    assert "PASSED" in summary
    for step in (
        "the check-in earned",
        "the order is paid",
        "the unpaid order expired",
        "Flower refused to an analyst",
    ):
        assert step in summary, summary
