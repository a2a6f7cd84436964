"""The Flower proxy: bad paths are a 4xx that never reach Flower, dot segments never leave the prefix, and
no proxied answer may be kept by a cache."""

import contextlib
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.conf import settings as django_settings
from django.test import Client

from backoffice.embedded_redis import free_port
from backoffice.ops import flower
from tests.ops.conftest import FLOWER_AUTH
from tests.processes import process_env, wait_for

BASE_DIR = Path(django_settings.BASE_DIR)

pytestmark = pytest.mark.django_db


class Recorder(list):
    """The paths Flower was asked for; `.requests` holds the whole requests."""

    def __init__(self):
        super().__init__()
        self.requests = []


@pytest.fixture
def fake_flower(settings, monkeypatch):
    """Flower replaced by an in-process transport that records every URL the proxy asks for."""
    settings.FLOWER_URL = "http://flower.test/ops/flower"
    settings.FLOWER_BASIC_AUTH = FLOWER_AUTH
    seen = Recorder()

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        seen.requests.append(request)
        headers = {"content-type": "text/html", "cache-control": "public, max-age=3600", "expires": "never"}
        return httpx.Response(200, headers=headers, content=b"flower page")

    fake = httpx.Client(transport=httpx.MockTransport(answer))
    monkeypatch.setattr(flower, "client", lambda: fake)
    return seen


CONTROL_PATHS = ["/ops/flower/%00", "/ops/flower/api/tasks%00x", "/ops/flower/a%09b", "/ops/flower/%7f"]


@pytest.mark.parametrize("path", CONTROL_PATHS)
def test_control_characters_in_the_path_are_a_400_that_never_reach_flower(client, ops, fake_flower, path):
    client.force_login(ops)

    response = client.get(path)

    assert response.status_code == 400
    assert response.json() == {"detail": "This path is not part of Flower."}
    assert fake_flower == []


def test_a_line_break_in_the_path_matches_no_route(client, ops, fake_flower):
    client.force_login(ops)

    assert client.get("/ops/flower/a%0d%0aSet-Cookie:x").status_code == 404  # Django's `path:` stops at \n
    assert fake_flower == []


def test_nul_byte_with_debug_on_shows_no_credential(ops, fake_flower, settings):
    settings.DEBUG = True
    client = Client(raise_request_exception=False)
    client.force_login(ops)

    response = client.get("/ops/flower/%00")

    assert response.status_code == 400
    assert FLOWER_AUTH.split(":")[1].encode() not in response.content


@pytest.mark.parametrize(
    "path",
    [
        "/ops/flower/%2e%2e/admin",
        "/ops/flower/%2E%2E/%2E%2E/etc/passwd",
        "/ops/flower/api/%2e%2e/%2e%2e/x",
        "/ops/flower/..%2f..%2fx",
        "/ops/flower/..%5c..%5cx",
    ],
)
def test_dot_segments_leaving_the_prefix_are_refused(client, ops, fake_flower, path):
    client.force_login(ops)

    response = client.get(path)

    assert response.status_code == 400
    assert fake_flower == []


@pytest.mark.parametrize(
    ("path", "upstream"),
    [
        ("/ops/flower/api/%2e%2e/workers", "/ops/flower/workers"),
        ("/ops/flower/./tasks/", "/ops/flower/tasks/"),
        ("/ops/flower/worker/w1@host", "/ops/flower/worker/w1@host"),
        ("/ops/flower/task/a%3Fb%23c", "/ops/flower/task/a%3Fb%23c"),  # a decoded ? or # stays in the path
        ("/ops/flower/", "/ops/flower/"),
    ],
)
def test_paths_inside_the_prefix_reach_flower_normalised(client, ops, fake_flower, path, upstream):
    client.force_login(ops)

    response = client.get(path)

    assert response.status_code == 200
    assert fake_flower == [upstream]


@pytest.mark.parametrize("path", ["/ops/flower/", "/ops/flower/api/tasks", "/ops/flower/static/css/flower.css"])
def test_proxied_answers_are_never_stored_by_a_cache(client, ops, fake_flower, path):
    client.force_login(ops)

    response = client.get(path)

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert "Expires" not in response


def test_errors_from_the_proxy_are_not_stored_either(client, ops, fake_flower):
    client.force_login(ops)

    assert client.get("/ops/flower/%00")["Cache-Control"] == "no-store"
    assert client.post("/ops/flower/api/tasks")["Cache-Control"] == "no-store"


def _procfile_command(name: str) -> str:
    for line in (BASE_DIR / "deploy" / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} line in deploy/Procfile")


def _group_pids(pgid: int) -> list[int]:
    pids = []
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # after the name: state, ppid, pgrp
            pids.append(int(status.parent.name))
    return pids


def _listening_tcp_inodes() -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            columns = row.split()
            if columns[3] == "0A":  # LISTEN
                inodes.add(columns[9])
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    return inodes


@pytest.fixture
def flower_as_make_run_starts_it(tmp_path, redis_client):
    """deploy/Procfile's flower line, started the way `make run` starts it (through envfile --exec)."""
    env = process_env(
        FLOWER_BASIC_AUTH=FLOWER_AUTH,
        FLOWER_PORT=str(free_port()),  # only used if Flower (wrongly) listened on TCP
        PYTHONPATH=str(BASE_DIR),
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    )
    env.pop("FLOWER_UNIX_SOCKET", None)
    log = (tmp_path / "flower.log").open("wb")
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "backoffice.envfile", "--exec", "sh", "-c", _procfile_command("flower")],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    proc.socket = tmp_path / "var" / "run" / "flower.sock"
    proc.log = lambda: (tmp_path / "flower.log").read_text(errors="replace")
    yield proc
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(10)
    log.close()


@pytest.mark.slow
def test_flower_keeps_its_credential_out_of_argv_and_listens_only_on_a_private_socket(
    client,
    ops,
    settings,
    flower_as_make_run_starts_it,
):
    proc = flower_as_make_run_starts_it
    over_socket = httpx.Client(transport=httpx.HTTPTransport(uds=str(proc.socket)), timeout=2)

    def answers() -> bool:
        assert proc.poll() is None, proc.log()
        with contextlib.suppress(httpx.HTTPError):
            return over_socket.get("http://flower/ops/flower/healthcheck").status_code == 200
        return False

    wait_for(answers, timeout=30, message="Flower to answer on its socket")

    pids = _group_pids(proc.pid)
    assert pids
    for pid in pids:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        assert FLOWER_AUTH.split(":")[1] not in argv, argv
        assert not _socket_inodes(pid) & _listening_tcp_inodes(), f"pid {pid} listens on TCP: {argv}"
    assert stat.S_IMODE(proc.socket.parent.stat().st_mode) == 0o700  # Flower makes the socket itself 0777
    assert over_socket.get("http://flower/ops/flower/api/workers").status_code == 401  # its auth still holds

    settings.FLOWER_UNIX_SOCKET = str(proc.socket)
    settings.FLOWER_BASIC_AUTH = FLOWER_AUTH
    client.force_login(ops)
    response = client.get("/ops/flower/api/workers")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"


DATATABLE_FORM = "draw=1&start=0&length=15&order%5B0%5D%5Bcolumn%5D=0&order%5B0%5D%5Bdir%5D=desc"


@pytest.fixture
def csrf_client(ops):
    client = Client(enforce_csrf_checks=True)
    client.force_login(ops)
    return client


def _flower_token(client) -> str:
    """The token Flower's script finds in its `_xsrf` cookie after loading one of its pages."""
    page = client.get("/ops/flower/tasks")
    assert page.status_code == 200
    return page.cookies["_xsrf"].value


def test_flowers_task_table_post_reaches_flower_with_the_portals_csrf_token(csrf_client, fake_flower):
    token = _flower_token(csrf_client)

    response = csrf_client.post(
        "/ops/flower/tasks/datatable",
        DATATABLE_FORM,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_XSRFTOKEN=token,  # what Flower's script sends
    )

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert fake_flower == ["/ops/flower/tasks", "/ops/flower/tasks/datatable"]
    upstream = fake_flower.requests[-1]
    assert (upstream.method, upstream.content.decode()) == ("POST", DATATABLE_FORM)
    flower_cookie = upstream.headers["cookie"].removeprefix("_xsrf=")
    assert flower_cookie == upstream.headers["x-xsrftoken"] != token  # Flower's own pair, not the portal's token
    assert "sessionid" not in upstream.headers["cookie"]


def test_flowers_task_table_post_without_the_csrf_token_is_refused(csrf_client, fake_flower):
    _flower_token(csrf_client)

    response = csrf_client.post(
        "/ops/flower/tasks/datatable", DATATABLE_FORM, content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 403
    assert fake_flower == ["/ops/flower/tasks"]


@pytest.mark.parametrize(
    "path",
    [
        "/ops/flower/api/worker/shutdown/w1@localhost",
        "/ops/flower/api/task/revoke/t-1",
        "/ops/flower/api/worker/pool/grow/w1@localhost",
        "/ops/flower/tasks/datatable/../../api/worker/shutdown/w1",
    ],
)
def test_every_other_post_is_refused_even_with_a_valid_token(csrf_client, fake_flower, path):
    token = _flower_token(csrf_client)

    response = csrf_client.post(path, HTTP_X_XSRFTOKEN=token)

    assert response.status_code in (400, 405)
    assert fake_flower == ["/ops/flower/tasks"]


@pytest.mark.slow
def test_flowers_tasks_tab_inside_the_portal_lists_tasks(live_server, live_worker, live_flower, ops, page):
    from backoffice.tasks import ping_task
    from tests.accounts.staff import PASSWORD
    from tests.browser import admin_login

    ping_task.delay("seen in the tasks tab").get(timeout=20)
    failed = []
    page.on("response", lambda response: failed.append(response.url) if response.status >= 400 else None)
    page.set_viewport_size({"width": 1440, "height": 900})
    admin_login(page, live_server.url, ops.username, PASSWORD)
    page.goto(f"{live_server.url}/ops/monitor/")
    frame = page.frame_locator("#flower-frame")
    frame.locator(".navbar-toggler:visible, a.nav-link:visible").first.wait_for()
    if frame.locator(".navbar-toggler").is_visible():  # the frame is narrower than Flower's breakpoint
        frame.locator(".navbar-toggler").click()
    frame.locator("a.nav-link", has_text="Tasks").click()

    frame.locator("#tasks-table", has_text="backoffice.ping").wait_for(timeout=30_000)
    assert failed == []


@pytest.mark.slow
def test_flower_inside_the_portal_offers_no_control_buttons(live_server, live_worker, live_flower, ops, page):
    from tests.accounts.staff import PASSWORD
    from tests.browser import admin_login

    admin_login(page, live_server.url, ops.username, PASSWORD)
    page.goto(f"{live_server.url}/ops/monitor/")
    page.locator("#flower-frame").evaluate(f"frame => frame.src = '/ops/flower/worker/{live_worker.hostname}'")
    frame = page.frame_locator("#flower-frame")
    frame.locator("#workername", has_text=live_worker.hostname).wait_for(timeout=30_000)

    for control in ("#worker-group", "#worker-shutdown", "#worker-pool-grow", "#worker-pool-autoscale"):
        assert frame.locator(control).count() == 0, control
    assert frame.locator("button", has_text="Apply").count() == 0  # rate limits and timeouts
