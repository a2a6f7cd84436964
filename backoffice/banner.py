"""`make run`'s banner (the `banner` line of deploy/Procfile): waits until /healthz answers "ok", then prints
where the portal is and how to sign in, once, below the start-up noise. Development only."""

import argparse
import os
import signal
import time

import httpx

WAIT_S = 180  # a cold start on a busy laptop: migrations are done, workers and beat still booting
POLL_S = 0.5


def render(*, url: str, username: str, password_in_env: bool) -> str:
    if password_in_env:
        where = "DJANGO_SUPERUSER_PASSWORD, in .env unless set in your shell (demo staff share it)"
    else:
        where = "printed once when the user was created; reset: .venv/bin/python manage.py changepassword admin"
    lines = [
        "Backoffice is up.",
        f"  Portal:    {url}/admin/",
        f"  User:      {username}",
        f"  Password:  {where}",
        f"  Flower:    {url}/ops/monitor/  (inside the portal)",
        f"  Health:    {url}/healthz",
        "  Stop:      Ctrl-C",
    ]
    rule = "=" * max(len(line) for line in lines)
    return "\n".join([rule, *lines, rule])


def wait_healthy(url: str, *, timeout: float) -> dict | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{url}/healthz", timeout=2)
            if response.status_code == 200 and response.json().get("status") == "ok":
                return response.json()
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(POLL_S)  # polling a process we do not own: nothing to await
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('WEB_PORT', '8000')}")
    parser.add_argument("--username", default="admin")
    args = parser.parse_args()
    url = args.url.rstrip("/")
    if wait_healthy(url, timeout=WAIT_S) is None:
        print(f"Backoffice did not report healthy within {WAIT_S} s: see {url}/healthz and the lines above.")
    else:
        password_in_env = bool(os.environ.get("DJANGO_SUPERUSER_PASSWORD"))
        print(render(url=url, username=args.username, password_in_env=password_in_env), flush=True)
    # honcho stops every process when one exits: stay until it stops us.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
