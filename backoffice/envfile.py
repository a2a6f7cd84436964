"""The development .env: `python -m backoffice.envfile > .env` prints one with fresh random secrets, and
`python -m backoffice.envfile --exec CMD ...` runs CMD with the file's variables beneath the real environment.

honcho loads .env on top of the environment, so `PAYMENT_WEBHOOK_SECRET=... make run` would silently keep the
file's value; `make run` therefore starts honcho through `--exec` (with honcho's own loading turned off), and
the real environment wins, as it does for settings.py. It also puts Flower on a private Unix socket.
"""

import os
import secrets
import sys
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

TEMPLATE = """\
# Written by `make run` on first start. Local development only: never commit this file.
SECRET_KEY={secret_key}
# Flower listens on 127.0.0.1 behind this password; only the portal's proxy knows it.
FLOWER_BASIC_AUTH=portal:{flower_password}
PAYMENT_WEBHOOK_SECRET={payment_secret}
# The password setup_portal gives the admin user (and, with --demo, the demo staff) when it creates them.
DJANGO_SUPERUSER_PASSWORD={admin_password}
# Uncomment to use real services instead of the embedded Redis and the SQLite file in var/:
# DATABASE_URL=postgres://user@127.0.0.1:5432/backoffice
# REDIS_URL=redis://127.0.0.1:6379/0
"""


def render() -> str:
    return TEMPLATE.format(
        secret_key=secrets.token_urlsafe(50),
        flower_password=secrets.token_urlsafe(24),
        payment_secret=secrets.token_urlsafe(32),
        admin_password=secrets.token_urlsafe(12),
    )


def env_file_path() -> Path:
    """The file settings.py reads: ENV_FILE, else .env in the current directory (the project's, under make)."""
    return Path(os.environ.get("ENV_FILE") or Path.cwd() / ".env")


def load_beneath_environment(path: Path) -> None:
    """Set each variable of the file that the environment does not already have."""
    if path.exists():
        environ.Env.read_env(str(path), overwrite=False)


def flower_socket_default() -> None:
    """Under `make run` Flower listens on a Unix socket in a directory only this user may enter (Flower makes the
    socket itself world-writable), so no other local user reaches its pages, /metrics or /healthcheck."""
    if "FLOWER_UNIX_SOCKET" not in os.environ:
        os.environ["FLOWER_UNIX_SOCKET"] = str(Path.cwd() / "var" / "run" / "flower.sock")
    if os.environ["FLOWER_UNIX_SOCKET"]:
        directory = Path(os.environ["FLOWER_UNIX_SOCKET"]).parent
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)


def main(argv: list[str]) -> None:
    if argv[:1] == ["--exec"] and len(argv) > 1:
        load_beneath_environment(env_file_path())
        flower_socket_default()
        os.execvp(argv[1], argv[1:])  # noqa: S606 - the command make passes; replaced, so signals reach it
    print(render(), end="")


if __name__ == "__main__":
    main(sys.argv[1:])
