"""`make prod-smoke`: the production shape, started for real on this machine and driven over HTTPS.

nginx with deploy/nginx.conf as shipped (only the substitutions its header documents), a throwaway TLS
certificate, gunicorn, one worker per queue set, beat and Flower started from deploy/Procfile's own lines,
DEBUG=0, PostgreSQL reached through PgBouncer in transaction pooling mode, and Redis. Then, through nginx: /healthz,
static files served by nginx with cache headers, the admin login, a check-in that earns points, an order placed and
paid by a signed callback, an order left to expire, Flower through nginx's auth_request (and refused to an analyst);
then `check --deploy` and a clean stop of everything it started. Exit status 0 means all of it held.

Needs PostgreSQL (DATABASE_URL; a database `<name>_smoke` is created and dropped on the same server) and uses
REDIS_URL's server on its own db (the embedded redis-server when unset). nginx, PgBouncer and openssl come from
Debian's packages, installed when missing (as root). Every port is a free one; nothing of the machine's own
services' configuration is read or changed.
"""

import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PROCESSES = ("web", "worker", "worker_long", "beat", "flower")  # deploy/Procfile's production lines
PACKAGES = {"nginx": "nginx", "pgbouncer": "pgbouncer", "openssl": "openssl"}
SBIN = ("/usr/sbin", "/sbin")
HOST = "localhost"
STOP_TIMEOUT_S = 30
# Each program's graceful stop: nginx finishes open requests on QUIT, PgBouncer waits for its clients on INT.
STOP_SIGNALS = {"nginx": signal.SIGQUIT, "pgbouncer": signal.SIGINT}
STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"prod-smoke [{time.monotonic() - STARTED:6.1f} s] {message}", flush=True)


class SmokeFailure(Exception):
    pass


def check(condition, message: str) -> None:
    if not condition:
        raise SmokeFailure(message)
    say(f"ok: {message}")


def wait_for(predicate, *, timeout: float, message: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise SmokeFailure(f"timed out after {timeout:g} s waiting for {message}")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=os.pathsep.join(SBIN))


def ensure_packages() -> dict[str, str]:
    missing = [package for binary, package in PACKAGES.items() if not which(binary)]
    if missing:
        if os.geteuid() != 0:
            raise SmokeFailure(f"missing {' '.join(missing)}: sudo apt-get install {' '.join(missing)}")
        say(f"installing Debian's {' '.join(missing)}")
        apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-q", *missing]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(apt, env=env, stdout=subprocess.DEVNULL, check=False).returncode != 0:
            subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=600", "update", "-q"], env=env, check=True)
            subprocess.run(apt, env=env, stdout=subprocess.DEVNULL, check=True)
    return {binary: which(binary) for binary in PACKAGES}


class Stack:
    """Everything the smoke starts, so that it is all stopped whatever happens."""

    def __init__(self, work: Path):
        self.work = work
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}

    def start(self, name: str, args: list[str], *, env: dict, cwd: Path = ROOT) -> subprocess.Popen:
        log = self.work / "logs" / f"{name}.log"
        log.parent.mkdir(exist_ok=True)
        self.logs[name] = log
        with log.open("ab") as out:
            proc = subprocess.Popen(  # noqa: S603 - fixed programs, our own Procfile lines
                args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs[name] = proc
        say(f"started {name} (pid {proc.pid})")
        return proc

    def log(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace") if name in self.logs else ""

    def assert_running(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise SmokeFailure(f"{name} exited with {proc.returncode}:\n{self.log(name)[-3000:]}")

    def stop(self) -> dict[str, int | str]:
        """SIGTERM each process group (web first, nginx last), then wait; SIGKILL only what outlives the timeout."""
        outcome = {}
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, STOP_SIGNALS.get(name, signal.SIGTERM))
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for name, proc in self.procs.items():
            try:
                outcome[name] = proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
                outcome[name] = "killed after the timeout"
            # Nothing of its group may outlive it (pool children, gunicorn workers, nginx workers).
            group_gone = _wait_until(lambda pid=proc.pid: not _group_alive(pid), timeout=5)
            if not group_gone:
                os.killpg(proc.pid, signal.SIGKILL)
                outcome[name] = f"{outcome[name]}, children left behind (killed)"
        return outcome


def procfile_lines() -> dict[str, str]:
    lines = {}
    for line in (ROOT / "deploy" / "Procfile").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line)
        if match:
            lines[match.group(1)] = match.group(2)
    return lines


def nginx_site(*, ports: dict, cert: Path, key: Path, flower_auth: str) -> str:
    """deploy/nginx.conf with the substitutions its header documents, and no others."""
    text = (ROOT / "deploy" / "nginx.conf").read_text()
    substitutions = [
        ("/etc/letsencrypt/live/portal.example.com/fullchain.pem", str(cert)),
        ("/etc/letsencrypt/live/portal.example.com/privkey.pem", str(key)),
        ("portal.example.com", HOST),
        ("FLOWER_AUTHORIZATION", flower_auth),
        ("127.0.0.1:8000", f"127.0.0.1:{ports['web']}"),
        ("127.0.0.1:5555", f"127.0.0.1:{ports['flower']}"),
        ("listen 80;", f"listen {ports['http']};"),
        ("listen [::]:80;", f"listen [::]:{ports['http']};"),
        ("listen 443 ", f"listen {ports['https']} "),
        ("listen [::]:443 ", f"listen [::]:{ports['https']} "),
        ("/srv/backoffice/", f"{ROOT}/"),
    ]
    for old, new in substitutions:
        if old not in text:
            raise SmokeFailure(f"deploy/nginx.conf no longer contains {old!r}: update its header and this smoke")
        text = text.replace(old, new)
    return text


def nginx_main(*, work: Path, site: Path) -> str:
    """The http block deploy/nginx.conf is included into (Debian's /etc/nginx/nginx.conf plays this part)."""
    return f"""
daemon off;
master_process on;
worker_processes 1;
user root;
pid {work}/nginx/nginx.pid;
error_log {work}/nginx/error.log warn;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {work}/nginx/access.log;
    client_body_temp_path {work}/nginx/body;
    proxy_temp_path {work}/nginx/proxy;
    fastcgi_temp_path {work}/nginx/fastcgi;
    uwsgi_temp_path {work}/nginx/uwsgi;
    scgi_temp_path {work}/nginx/scgi;
    include {site};
}}
"""


def pgbouncer_ini(*, work: Path, port: int, db: dict, smoke_db: str) -> str:
    auth = f" user={db['user']}" if db["user"] else ""
    password = f" password={db['password']}" if db["password"] else ""
    return f"""[databases]
backoffice = host={db["host"]} port={db["port"]} dbname={smoke_db}{auth}{password}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = any
pool_mode = transaction
max_client_conn = 200
default_pool_size = 20
ignore_startup_parameters = extra_float_digits,options
logfile = {work}/pgbouncer/pgbouncer.log
pidfile = {work}/pgbouncer/pgbouncer.pid
"""


def database_parts(url: str) -> dict:
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        raise SmokeFailure("DATABASE_URL must point to PostgreSQL (PgBouncer sits in front of it)")
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": parts.username or "",
        "password": parts.password or "",
        "name": parts.path.lstrip("/"),
    }


def admin_sql(db: dict, *statements: str) -> None:
    import psycopg

    conninfo = f"host={db['host']} port={db['port']} dbname=postgres"
    if db["user"]:
        conninfo += f" user={db['user']}"
    if db["password"]:
        conninfo += f" password={db['password']}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def manage(*args: str, env: dict) -> str:
    run = subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if run.returncode != 0:
        raise SmokeFailure(f"manage.py {' '.join(args)} failed:\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}")
    return run.stdout + run.stderr


def login(client, *, username: str, password: str) -> None:
    client.get("/admin/login/")
    response = client.post(
        "/admin/login/?next=/admin/",
        data={"username": username, "password": password, "next": "/admin/"},
        headers={"X-CSRFToken": client.cookies.get("csrftoken", ""), "Referer": f"{client.base_url}/admin/login/"},
    )
    if response.status_code != 302 or response.headers.get("location") != "/admin/":
        raise SmokeFailure(f"login of {username} answered {response.status_code}: {response.text[:500]}")


def drive(*, stack: Stack, env: dict, ports: dict, cert: Path, password: str) -> None:
    import httpx

    base = f"https://{HOST}:{ports['https']}"
    anonymous = httpx.Client(base_url=base, verify=str(cert), timeout=10)

    def healthy():
        stack.assert_running()
        try:
            response = anonymous.get("/healthz")
        except httpx.HTTPError:
            return None
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        return body if response.status_code == 200 and body.get("workers", 0) >= 2 else None

    health = wait_for(healthy, timeout=90, message="/healthz through nginx to be ok with both workers")
    check(health["status"] == "ok" and health["beat"] == "ok", f"/healthz over HTTPS through nginx: {health}")

    redirect = httpx.get(f"http://127.0.0.1:{ports['http']}/admin/", headers={"Host": HOST}, timeout=5)
    check(
        redirect.status_code == 301 and redirect.headers["location"].startswith(f"https://{HOST}"),
        "plain HTTP is redirected to HTTPS",
    )

    manifest = json.loads((ROOT / "staticfiles" / "staticfiles.json").read_text())["paths"]
    static_path = manifest["admin/css/base.css"]
    response = anonymous.get(f"/static/{static_path}")
    check(
        response.status_code == 200
        and "immutable" in response.headers.get("cache-control", "")
        and response.headers.get("expires")
        and f"/static/{static_path}" not in stack.log("web"),
        f"static file served by nginx itself with cache headers ({response.headers.get('cache-control')})",
    )

    admin = httpx.Client(base_url=base, verify=str(cert), timeout=10)
    login(admin, username="admin", password=password)
    page = admin.get("/admin/")
    check(page.status_code == 200 and "logout" in page.text.lower(), "admin login over HTTPS; the dashboard answers")
    check(
        all(cookie.secure for cookie in admin.cookies.jar if cookie.name in ("sessionid", "csrftoken")),
        "session and CSRF cookies are Secure",
    )

    flower = admin.get("/ops/flower/", follow_redirects=True)
    check(flower.status_code == 200 and "Flower" in flower.text, "Flower through nginx auth_request, as admin")
    refused = anonymous.get("/ops/flower/metrics")
    check(
        refused.status_code == 302 and urlsplit(refused.headers["location"]).path == "/admin/login/",
        "Flower refused to an anonymous request (sent to the login page)",
    )
    analyst = httpx.Client(base_url=base, verify=str(cert), timeout=10)
    login(analyst, username="analyst", password=password)
    check(analyst.get("/ops/flower/").status_code == 403, "Flower refused to an analyst (403)")
    for client in (analyst, admin):
        client.close()

    # The business site signs its users in; here a session is made as its login would (see backoffice.ops.traffic).
    import django

    os.environ.update(env)
    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth import login as session_login
    from django.contrib.sessions.backends.db import SessionStore
    from django.http import HttpRequest

    from orders.models import Order, Product
    from orders.payments import signature_header
    from points.models import LedgerEntry

    user = get_user_model().objects.create_user(username=f"smoke-{secrets.token_hex(3)}")
    request = HttpRequest()
    request.session = SessionStore()
    request.META["REMOTE_ADDR"] = "127.0.0.1"
    session_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    request.session.save()
    customer = httpx.Client(base_url=base, verify=str(cert), timeout=10)
    customer.cookies.set(settings.SESSION_COOKIE_NAME, request.session.session_key)
    customer.get("/api/points/me/")  # sets the CSRF cookie the POSTs need
    csrf = customer.cookies.get(settings.CSRF_COOKIE_NAME, "")

    def post(path: str, payload: dict | None = None):
        return customer.post(
            path,
            content=json.dumps(payload or {}),
            headers={"X-CSRFToken": csrf, "Content-Type": "application/json", "Referer": base + "/"},
        )

    checkin = post("/api/points/checkin/")
    check(checkin.status_code == 200 and checkin.json().get("code") == 0, f"check-in answered {checkin.status_code}")
    entry = wait_for(
        lambda: LedgerEntry.objects.filter(account__user=user, kind=LedgerEntry.Kind.AWARD).first(),
        timeout=30,
        message="the check-in's points in the ledger",
    )
    check(entry.amount > 0, f"the check-in earned {entry.amount} point(s), awarded by the points worker")

    sku = Product.objects.filter(is_active=True).values_list("sku", flat=True).first()
    paid = post("/api/orders/", {"lines": [{"sku": sku, "quantity": 1}]})
    check(paid.status_code == 201, f"order placed ({paid.status_code})")
    order = paid.json()
    body = json.dumps(
        {
            "event_id": f"smoke-{order['number']}",
            "order_number": order["number"],
            "amount": str(Decimal(order["total"])),
            "status": "succeeded",
        }
    ).encode()
    callback = anonymous.post(
        "/api/payments/callback/",
        content=body,
        headers={
            "X-Signature": signature_header(secret=settings.PAYMENT_WEBHOOK_SECRET, body=body),
            "Content-Type": "application/json",
        },
    )
    check(callback.status_code == 200, f"signed payment callback accepted ({callback.status_code})")
    check(
        wait_for(
            lambda: Order.objects.filter(number=order["number"], status=Order.Status.PAID).exists(),
            timeout=30,
            message="the order to be paid",
        ),
        "the order is paid",
    )
    forged = anonymous.post(
        "/api/payments/callback/",
        content=body.replace(b"succeeded", b"succeeded "),  # signed, then changed
        headers={
            "X-Signature": signature_header(secret=settings.PAYMENT_WEBHOOK_SECRET, body=body),
            "Content-Type": "application/json",
        },
    )
    check(400 <= forged.status_code < 500, f"a callback with a bad signature is refused ({forged.status_code})")

    left = post("/api/orders/", {"lines": [{"sku": sku, "quantity": 1}]})
    check(left.status_code == 201, "a second order placed, left unpaid")
    check(
        wait_for(
            lambda: Order.objects.filter(number=left.json()["number"], status=Order.Status.EXPIRED).exists(),
            timeout=60,
            message="the unpaid order to expire",
        ),
        f"the unpaid order expired after its {float(env['ORDER_PAYMENT_TIMEOUT_MINUTES']) * 60:g}-s deadline",
    )
    customer.close()
    anonymous.close()
    stack.assert_running()


def main() -> int:
    if not os.environ.get("DATABASE_URL"):
        print("prod-smoke needs PostgreSQL: set DATABASE_URL (a <name>_smoke database is made beside it)")
        return 2
    db = database_parts(os.environ["DATABASE_URL"])
    binaries = ensure_packages()
    work = Path(tempfile.mkdtemp(prefix="backoffice-smoke-"))
    work.chmod(0o755)
    stack = Stack(work)
    smoke_db = f"{db['name']}_smoke"
    ports = {name: free_port() for name in ("http", "https", "web", "flower", "pgbouncer")}
    redis_url = os.environ.get("REDIS_URL")
    embedded = None
    if not redis_url:
        from backoffice.embedded_redis import start

        redis_url, embedded = start()
    password = secrets.token_urlsafe(16)
    flower_basic = f"portal:{secrets.token_urlsafe(16)}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))},
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "ENV_FILE": "/dev/null",  # only what is set here: no developer's .env
        "DJANGO_SETTINGS_MODULE": "backoffice.settings",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": HOST,
        "CSRF_TRUSTED_ORIGINS": f"https://{HOST}:{ports['https']}",
        "TRUSTED_PROXY_COUNT": "1",
        "DATABASE_URL": f"postgres://smoke@127.0.0.1:{ports['pgbouncer']}/backoffice",
        "DATABASE_TRANSACTION_POOLING": "1",
        "REDIS_URL": redis_url,
        "PORT": str(ports["web"]),
        "WEB_BIND": "127.0.0.1",
        "WEB_WORKERS": "2",
        "WORKER_CONCURRENCY": "2",
        "HEALTH_EXPECTED_WORKERS": "2",  # the fast and the long worker
        "LONG_WORKER_CONCURRENCY": "1",
        "FLOWER_PORT": str(ports["flower"]),
        "FLOWER_URL": f"http://127.0.0.1:{ports['flower']}/ops/flower",
        "FLOWER_BASIC_AUTH": flower_basic,
        "PAYMENT_WEBHOOK_SECRET": secrets.token_urlsafe(32),
        "ORDER_PAYMENT_TIMEOUT_MINUTES": "0.1",
        "EXPORTS_ROOT": str(work / "exports"),
        "MEDIA_ROOT": str(work / "media"),
        "DJANGO_SUPERUSER_PASSWORD": password,
        "PYTHONUNBUFFERED": "1",
    }
    outcome = {}
    failure = None
    try:
        admin_sql(db, f'DROP DATABASE IF EXISTS "{smoke_db}" WITH (FORCE)', f'CREATE DATABASE "{smoke_db}"')
        say(f"database {smoke_db}; Redis {re.sub(r'//[^@]*@', '//', redis_url)}; ports {ports}")

        bouncer_dir = work / "pgbouncer"
        bouncer_dir.mkdir()
        (work / "pgbouncer.ini").write_text(pgbouncer_ini(work=work, port=ports["pgbouncer"], db=db, smoke_db=smoke_db))
        bouncer = [binaries["pgbouncer"], str(work / "pgbouncer.ini")]
        if os.geteuid() == 0:  # PgBouncer refuses to run as root
            shutil.chown(bouncer_dir, user="postgres" if _user_exists("postgres") else "nobody")
            bouncer[1:1] = ["-u", "postgres" if _user_exists("postgres") else "nobody"]
        stack.start("pgbouncer", bouncer, env=env)
        wait_for(lambda: _port_open(ports["pgbouncer"]), timeout=15, message="PgBouncer to listen")

        say("migrate, collectstatic, setup_portal, check --deploy (DEBUG=0, through PgBouncer)")
        manage("migrate", "--noinput", env=env)
        manage("collectstatic", "--noinput", "-v0", env=env)
        manage("setup_portal", "--demo", env=env)
        deploy_check = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
        check("no issues" in deploy_check, f"check --deploy --fail-level WARNING: {deploy_check.strip()}")

        cert, key = work / "tls" / "cert.pem", work / "tls" / "key.pem"
        cert.parent.mkdir()
        subprocess.run(  # noqa: S603 - openssl with fixed arguments
            [binaries["openssl"], "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
             f"/CN={HOST}", "-addext", f"subjectAltName=DNS:{HOST}", "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True,
        )  # fmt: skip
        (work / "nginx").mkdir()
        site = work / "nginx" / "backoffice.conf"
        flower_auth = base64.b64encode(flower_basic.encode()).decode()
        site.write_text(nginx_site(ports=ports, cert=cert, key=key, flower_auth=flower_auth))
        (work / "nginx" / "nginx.conf").write_text(nginx_main(work=work, site=site))
        nginx = [binaries["nginx"], "-c", str(work / "nginx" / "nginx.conf"), "-p", str(work / "nginx")]
        test = subprocess.run([*nginx, "-t"], capture_output=True, text=True, check=False)  # noqa: S603
        check(test.returncode == 0, f"nginx -t accepts deploy/nginx.conf: {test.stderr.strip().splitlines()[-1]}")

        lines = procfile_lines()
        for name in PROCESSES:
            line = lines[name]  # as shipped; exec'd, so the program itself gets the stop signal and reports its exit
            stack.start(name, ["/bin/sh", "-c", line if " exec " in f" {line}" else f"exec {line}"], env=env)
        stack.start("nginx", nginx, env=env)

        drive(stack=stack, env=env, ports=ports, cert=cert, password=password)
    except SmokeFailure as exc:
        failure = str(exc)
    finally:
        outcome = stack.stop()
        say("stopped: " + ", ".join(f"{name} {rc}" for name, rc in outcome.items()))
        if embedded is not None:
            embedded.terminate()
        try:
            admin_sql(db, f'DROP DATABASE IF EXISTS "{smoke_db}" WITH (FORCE)')
        except Exception as exc:  # noqa: BLE001 - reported; the stop matters more
            say(f"could not drop {smoke_db}: {exc}")
    unclean = {name: rc for name, rc in outcome.items() if rc != 0}
    if failure is None and unclean:
        failure = f"not a clean stop: {unclean}"
    if failure:
        say(f"FAILED: {failure}")
        for name in stack.logs:
            say(f"--- last lines of {name}:\n{stack.log(name)[-1500:]}")
        say(f"logs kept in {work}")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    say("PASSED: everything started, answered through nginx over HTTPS, and stopped cleanly")
    return 0


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_until(predicate, *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _port_open(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
