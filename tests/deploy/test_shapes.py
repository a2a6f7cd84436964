"""The compose file and the systemd units as their own tools read them: `docker compose config`, `systemd-analyze`."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"postgres", "redis", "migrate", "web", "worker", "worker_long", "beat", "flower"}
UNITS = ["backoffice-web.service", "backoffice-beat.service", "backoffice-flower.service"]

pytestmark = pytest.mark.slow


def _compose() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")  # Debian 12's package
    return [legacy] if legacy else None


@pytest.mark.skipif(_compose() is None, reason="needs docker compose (the client is enough: no engine)")
def test_compose_file_is_valid_and_runs_every_role(tmp_path):
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    for name in ("docker-compose.yml", "Dockerfile"):
        shutil.copy(ROOT / "deploy" / name, deploy / name)
    (deploy / ".env").write_text("POSTGRES_PASSWORD=smoke\nSECRET_KEY=x\nFLOWER_BASIC_AUTH=portal:smoke\n")
    base = [*_compose(), "-f", str(deploy / "docker-compose.yml"), "--env-file", str(deploy / ".env")]

    config = subprocess.run([*base, "config"], capture_output=True, text=True, check=False)
    services = subprocess.run([*base, "config", "--services"], capture_output=True, text=True, check=False)

    assert config.returncode == 0, config.stderr
    assert set(services.stdout.split()) == SERVICES, services.stdout
    assert "default,points,orders" in config.stdout and "exports,reports" in config.stdout


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
@pytest.mark.parametrize("unit", [*UNITS, "backoffice-worker@fast.service", "backoffice-worker@long.service"])
def test_systemd_unit_verifies_clean(tmp_path, unit):
    """Each unit with only the substitutions deploy/README.md names: the project directory and the env file."""
    env_file = tmp_path / "env"
    env_file.write_text("DEBUG=0\n")
    template = unit.split("@")[0] + "@.service" if "@" in unit else unit
    text = (ROOT / "deploy" / "systemd" / template).read_text()
    (tmp_path / unit).write_text(
        text.replace("/srv/backoffice", str(ROOT)).replace("/etc/backoffice/env", str(env_file))
    )
    assert (ROOT / ".venv" / "bin" / "celery").exists(), "make install first"

    verify = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(tmp_path / unit)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )

    assert verify.returncode == 0 and verify.stderr.strip() == "", verify.stderr
