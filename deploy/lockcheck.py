"""Check that the lock files still cover pyproject.toml: every dependency pinned, at a version it allows.

Run by `make install` before it installs from requirements-test.lock, so a dependency added to pyproject.toml
without `make lock` fails loudly here instead of as an ImportError later. Exit status 1 names what is missing.
"""

import re
import sys
import tomllib
from pathlib import Path

try:
    from packaging.requirements import Requirement
except ImportError:  # a fresh venv before the first install: pip carries its own copy
    from pip._vendor.packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_pins(path: Path) -> dict[str, str]:
    return {_normalise(name): version for name, version in PIN.findall(path.read_text())}


def problems(*, root: Path = ROOT) -> list[str]:
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    runtime = [Requirement(line) for line in project["dependencies"]]
    test = [Requirement(line) for line in project.get("optional-dependencies", {}).get("test", [])]
    found = []
    for lock_name, requirements in (("requirements.lock", runtime), ("requirements-test.lock", runtime + test)):
        lock = root / lock_name
        if not lock.exists():
            found.append(f"{lock_name} is missing")
            continue
        pins = lock_pins(lock)
        for requirement in requirements:
            pinned = pins.get(_normalise(requirement.name))
            if pinned is None:
                found.append(f"{requirement.name} ({requirement.specifier}) is not in {lock_name}")
            elif not requirement.specifier.contains(pinned, prereleases=True):
                found.append(f"{requirement.name}=={pinned} in {lock_name} is outside {requirement.specifier}")
    if found:
        return found
    runtime_pins, test_pins = (lock_pins(root / n) for n in ("requirements.lock", "requirements-test.lock"))
    for name, version in runtime_pins.items():
        if name in test_pins and test_pins[name] != version:
            found.append(f"{name} is {version} in requirements.lock but {test_pins[name]} in requirements-test.lock")
    return found


def main() -> int:
    found = problems()
    for problem in found:
        print(f"lockcheck: {problem}", file=sys.stderr)
    if found:
        print(
            "lockcheck: pyproject.toml and the lock files disagree: run `make lock` and commit both lock files",
            file=sys.stderr,
        )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
