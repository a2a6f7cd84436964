"""The lock files cover pyproject.toml, and `make install` refuses to install from locks that do not."""

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _lockcheck():
    spec = importlib.util.spec_from_file_location("lockcheck", ROOT / "deploy" / "lockcheck.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _copy_project(tmp_path: Path) -> Path:
    for name in ("pyproject.toml", "requirements.lock", "requirements-test.lock"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_the_committed_locks_cover_pyproject():
    assert _lockcheck().problems(root=ROOT) == []


def test_every_pin_carries_a_hash():
    for name in ("requirements.lock", "requirements-test.lock"):
        blocks = (ROOT / name).read_text().split("\n")
        pins = [i for i, line in enumerate(blocks) if "==" in line and not line.startswith("#")]
        assert pins, name
        for i in pins:
            assert blocks[i].rstrip().endswith("\\") and "--hash=sha256:" in blocks[i + 1], (name, blocks[i])


def test_a_dependency_added_without_make_lock_is_named(tmp_path):
    root = _copy_project(tmp_path)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("dependencies = [\n", 'dependencies = [\n    "xlsxwriter>=3.2",\n')
    )

    assert _lockcheck().problems(root=root) == [
        "xlsxwriter (>=3.2) is not in requirements.lock",
        "xlsxwriter (>=3.2) is not in requirements-test.lock",
    ]


def test_a_floor_raised_above_the_pin_is_named(tmp_path):
    root = _copy_project(tmp_path)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"django>=5.2,<5.3"', '"django>=5.2.999,<5.3"'))

    found = _lockcheck().problems(root=root)

    assert len(found) == 2 and all(p.startswith("django==5.2.") and "outside" in p for p in found), found


def test_lockcheck_exits_nonzero_and_says_make_lock(tmp_path):
    root = _copy_project(tmp_path)
    (root / "requirements-test.lock").write_text((root / "requirements.lock").read_text())
    (tmp_path / "deploy").mkdir()
    shutil.copy(ROOT / "deploy" / "lockcheck.py", tmp_path / "deploy" / "lockcheck.py")

    run = subprocess.run([sys.executable, str(tmp_path / "deploy" / "lockcheck.py")], capture_output=True, text=True)

    assert run.returncode == 1
    assert "pytest" in run.stderr and "run `make lock`" in run.stderr
