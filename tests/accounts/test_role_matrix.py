"""The role matrix, walked over whatever is registered when the test runs: every ModelAdmin (changelist, add,
change and its actions), every custom admin URL a ModelAdmin adds (adjust, reverse, simulate, test a URL, run
now, import and export), every page declared in a portal.py, and every other custom page and API path the URL
resolver knows, for each role, a superuser, staff with no role and anonymous visitors. Allowed pages answer; the
rest are refused, and a refused action or POST changes nothing.

Expectations come from the permissions each role holds (the groups `setup_portal` installs from every app's
roles.py, through the role_user fixture) and from what each page declares it needs: a portal.py page's
permission, `required_permissions` (set by backoffice.accounts.decorators.staff_permission_required), a class
view's `permission_required`, or for custom admin URLs the table below. Pages that declare nothing must at least
refuse anonymous visitors and staff without any permission.
"""

import re
import uuid

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from backoffice.accounts.roles import ANALYSTS, OPERATORS, OPS, ROLES
from backoffice.console.models import TaskRun
from backoffice.extension_point import collect
from points.models import Account, LedgerEntry
from tests.accounts.staff import SUPERUSER

pytestmark = pytest.mark.django_db

USERS = ["superuser", OPERATORS, ANALYSTS, OPS, "no role"]
REFUSED = {403}
ANONYMOUS_REFUSED = {302, 401, 403}
BASIC_PERMS = ("view", "add", "change", "delete")
CONVERTER_SAMPLES = {"int": "999999", "str": "x", "slug": "x", "path": "api/workers", "uuid": str(uuid.uuid4())}
# Pages with their own tests and semantics: the nginx auth_request target answers 204/401/403 by design.
SPECIAL_PAGES = {"ops:flower_auth"}
ANSWERS_503 = ("/healthz", "/ops/flower/")  # 503 is their answer when the checked part (or Flower) is down


# What each custom admin URL requires (any one of the permissions), where its view checks it itself. A custom
# admin URL missing here fails test_every_custom_admin_url_has_an_expectation: add it with what its view checks.
CUSTOM_ADMIN_URLS = {
    "points_account_adjust": ("points.adjust_account",),
    "points_ledgerentry_reverse": ("points.adjust_account",),
    "points_rule_simulate": ("points.simulate_rule",),
    "points_action_test_url": ("points.view_action", "points.change_action"),
    "django_celery_beat_periodictask_run": ("portal_console.run_task",),
    "orders_order_cancel": ("orders.cancel_order",),
    "orders_order_refund": ("orders.refund_order",),
    "portal_reports_report_preview": ("portal_reports.view_report",),
    "portal_alerts_alertrule_silence": ("portal_alerts.silence_alertrule",),
}
# The admin's own URLs, walked model by model in the first test; import-export's follow its admin's permissions.
STOCK_ADMIN_URL = re.compile(r"_(changelist|add|history|delete|change)$")
IMPORT_EXPORT_URL = re.compile(r"_(export|import|process_import)$")


@pytest.fixture
def people(db, redis_client, settings, role_user):
    from backoffice.embedded_redis import free_port

    settings.FLOWER_URL = f"http://127.0.0.1:{free_port()}/ops/flower"  # Flower down: the proxy answers 503
    call_command("setup_portal", "--demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    users = {"superuser": role_user(SUPERUSER, "matrix-root"), "no role": role_user(None, "matrix-nobody")}
    for role in ROLES:
        users[role] = role_user(role, f"matrix-{role.lower()}")
    assert {group.name for group in Group.objects.all()} >= set(ROLES)
    return users


def _client(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _request(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def _allowed_action(model_admin, user, action) -> bool:
    opts = model_admin.opts
    for perm in getattr(action, "allowed_permissions", ()):
        if perm in BASIC_PERMS:
            if not user.has_perm(f"{opts.app_label}.{perm}_{opts.model_name}"):
                return False
        elif not getattr(model_admin, f"has_{perm}_permission")(_request(user)):
            return False
    return True


def _snapshot(model):
    return sorted(model._default_manager.values_list(), key=repr)


@pytest.mark.parametrize("who", USERS)
def test_every_model_admin_page_and_action_follows_the_matrix(people, who):
    user = people[who]
    root = _client(people["superuser"])
    client = _client(user)
    problems = []
    for model, model_admin in admin.site._registry.items():
        opts = model._meta

        def perm(verb, opts=opts):
            return user.has_perm(f"{opts.app_label}.{verb}_{opts.model_name}")

        instance = model._default_manager.order_by("pk").first()
        pages = {
            "changelist": (
                reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
                perm("view") or perm("change"),
            ),
            "add": (reverse(f"admin:{opts.app_label}_{opts.model_name}_add"), perm("add")),
        }
        if instance is not None:
            change_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[instance.pk])
            pages["change"] = (change_url, perm("view") or perm("change"))
        for page, (url, holds) in pages.items():
            as_root = root.get(url).status_code
            status = client.get(url).status_code
            expected_allowed = holds and as_root == 200
            if expected_allowed and status != 200:
                problems.append(f"{opts.label} {page}: {status}, expected 200")
            if not expected_allowed and status not in REFUSED | {as_root} - {200}:
                problems.append(f"{opts.label} {page}: {status}, expected refused ({as_root} as superuser)")

        # Actions: offered exactly when the user holds their permissions; a refused one changes nothing.
        if not (perm("view") or perm("change")) or instance is None:
            continue
        # The admin's own policy is what a superuser is offered (e.g. no deletes on an append-only ledger);
        # a role is offered those of them whose permissions it holds.
        policy = model_admin.get_actions(_request(people["superuser"]))
        response = client.get(pages["changelist"][0])
        offered = set()
        if response.status_code == 200 and response.context and response.context.get("action_form"):
            offered = {name for name, _ in response.context["action_form"].fields["action"].choices if name}
        for name, (func, _name, _description) in policy.items():
            allowed = _allowed_action(model_admin, user, func)
            if allowed != (name in offered):
                problems.append(f"{opts.label} action {name}: offered={name in offered}, allowed={allowed}")
            if not allowed:
                before = _snapshot(model)
                client.post(
                    pages["changelist"][0],
                    {"action": name, admin.helpers.ACTION_CHECKBOX_NAME: [instance.pk], "index": 0, "post": "yes"},
                )
                if _snapshot(model) != before:
                    problems.append(f"{opts.label} action {name}: refused but changed rows")

    assert problems == []


def _walk(patterns, prefix="", namespace=None):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), pattern.namespace or namespace)
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), namespace, pattern


def _portal_paths():
    """Every custom page and API path the URL resolver knows, with what it requires (None: undeclared)."""
    found = []
    for route, namespace, pattern in _walk(get_resolver().url_patterns):
        if namespace == "admin" or route.startswith("^") or "(?P" in route:
            continue  # the admin site's own pages are walked model by model above
        if f"{namespace}:{pattern.name}" in SPECIAL_PAGES:
            continue
        path = "/" + re.sub(r"<(?:(\w+):)?\w+>", lambda m: CONVERTER_SAMPLES[m.group(1) or "str"], route)
        callback = pattern.callback
        required = getattr(callback, "required_permissions", None)
        view_class = getattr(callback, "view_class", None)
        if required is None and getattr(view_class, "permission_required", None):
            declared = view_class.permission_required
            required = (declared,) if isinstance(declared, str) else tuple(declared)
        found.append((path, required))
    return found


def test_the_walk_finds_the_portal_pages():
    paths = dict(_portal_paths())

    assert paths["/ops/workers/"] == ("portal_ops.view_ops",)
    assert paths["/ops/flower/api/workers"] == ("portal_ops.view_ops",)
    assert paths["/admin/audit/"] == ("admin.view_logentry",)
    assert paths["/healthz"] is None


def test_the_walk_covers_every_page_declared_in_portal_py():
    paths = dict(_portal_paths())
    declared = {reverse(page.url_name): (page.permission,) for page in collect().pages}

    assert declared == {path: paths.get(path) for path in declared}
    assert set(declared) >= {"/admin/console/", "/ops/workers/", "/ops/monitor/", "/admin/audit/"}


@pytest.mark.parametrize("who", [*USERS, "anonymous"])
def test_every_custom_page_and_api_path_follows_the_matrix(people, who):
    user = people.get(who)
    client = _client(user)
    problems = []
    for path, required in _portal_paths():
        status = client.get(path).status_code
        staff_page = path.startswith(("/admin/", "/ops/"))
        holds = user is not None and required is not None and user.has_perms(required)
        if status == 405 and staff_page and not holds:
            # A POST-only page: whoever may not use it must be refused on POST too, and nothing may happen.
            status = client.post(path).status_code
        if status >= 500 and not (path.startswith(ANSWERS_503) and status == 503):
            problems.append(f"{path}: {status}")
        elif user is None:
            if staff_page and status not in ANONYMOUS_REFUSED:
                problems.append(f"{path}: {status} to anonymous")
        elif required is not None:
            if holds and status in REFUSED:
                problems.append(f"{path}: {status}, expected allowed ({required})")
            if not holds and status not in REFUSED:
                problems.append(f"{path}: {status}, expected 403 ({required})")
        elif staff_page and who == "no role" and status not in REFUSED | {404, 405}:
            problems.append(f"{path}: {status} to staff without any permission (the page declares none)")

    assert problems == []


@pytest.mark.parametrize("who", ["anonymous", "no role"])
def test_admin_index_answers_staff_and_sends_others_to_login(people, who):
    response = _client(people.get(who)).get("/admin/")

    if who == "anonymous":
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    else:
        assert response.status_code == 200
        assert response.context["panels"] == []


def _custom_admin_urls():
    """(URL name, path, its ModelAdmin) for every URL a ModelAdmin adds to the stock ones, with the id of a real
    object where the URL takes one (the demo data provides them), so that an allowed user reaches the view."""
    found = []
    for model in apps.get_models():
        if not admin.site.is_registered(model):
            continue
        model_admin = admin.site.get_model_admin(model)
        instance = model._default_manager.order_by("pk").first()
        for pattern in model_admin.get_urls():
            if not isinstance(pattern, URLPattern) or not pattern.name or STOCK_ADMIN_URL.search(pattern.name):
                continue
            takes_id = "<" in str(pattern.pattern)
            if takes_id and instance is None:
                raise AssertionError(f"no {model._meta.label} to walk {pattern.name} with: add one to the demo data")
            found.append(
                (pattern.name, reverse(f"admin:{pattern.name}", args=[instance.pk] if takes_id else []), model_admin)
            )
    return found


def _may_use(name, model_admin, user) -> bool:
    if user is None:
        return False
    if IMPORT_EXPORT_URL.search(name):
        verb = "export" if name.endswith("_export") else "import"
        return getattr(model_admin, f"has_{verb}_permission")(_request(user))
    return any(user.has_perm(permission) for permission in CUSTOM_ADMIN_URLS[name])


def _history_snapshot():
    """What a refused custom admin POST could have changed: balances, the ledger, task runs, the admin log."""
    return [
        sorted(Account.objects.values_list("pk", "balance")),
        LedgerEntry.objects.count(),
        TaskRun.objects.count(),
        LogEntry.objects.count(),
    ]


def test_every_custom_admin_url_has_an_expectation(people):
    names = {name for name, _path, _admin in _custom_admin_urls()}
    unknown = sorted(name for name in names if not IMPORT_EXPORT_URL.search(name) and name not in CUSTOM_ADMIN_URLS)

    assert unknown == []
    assert names >= set(CUSTOM_ADMIN_URLS)  # the table names no URL that is gone


@pytest.mark.parametrize("who", [*USERS, "anonymous"])
def test_every_custom_admin_url_follows_the_matrix(people, who):
    user = people.get(who)
    client = _client(user)
    problems = []
    for name, path, model_admin in _custom_admin_urls():
        allowed = _may_use(name, model_admin, user)
        status = client.get(path).status_code
        if status >= 500:
            problems.append(f"{name} GET: {status}")
        elif user is None:
            if status != 302:
                problems.append(f"{name} GET: {status} to anonymous, expected the login redirect")
        elif allowed and status in REFUSED:
            problems.append(f"{name} GET: {status}, expected allowed")
        elif not allowed and status not in REFUSED | {405}:  # 405: a POST-only view, refused on POST below
            problems.append(f"{name} GET: {status}, expected 403")
        if allowed:
            continue
        # Refused on POST too, and nothing happens.
        before = _history_snapshot()
        status = client.post(path, {"amount": 5, "reason": "matrix", "url": "/x", "method": "GET"}).status_code
        if status not in (ANONYMOUS_REFUSED if user is None else REFUSED):
            problems.append(f"{name} POST: {status}, expected refused")
        if _history_snapshot() != before:
            problems.append(f"{name} POST: refused but changed rows")

    assert problems == []
