"""The portal's extension point: an app joins the portal by its portal.py alone.

tests/portal_app exists only in the tests (INSTALLED_APPS in tests/settings.py) and declares one page, one
dashboard panel and one export target in its portal.py; nothing outside its folder names it.
"""

import types

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.urls import reverse

from backoffice.exports import services as export_services
from backoffice.exports.registry import available_targets, get_target
from backoffice.extension_point import Page, Panel, Urls, build, collect, portal_declarations_check
from backoffice.ops.dashboard import visible_panels
from backoffice.ops.models import DashboardPanel
from backoffice.ops.services import dashboard_refresh
from tests.accounts.staff import staff_user
from tests.portal_app.models import Note

pytestmark = pytest.mark.django_db


def _with_perms(user, *names):
    for name in names:
        app_label, codename = name.split(".", 1)
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return type(user).objects.get(pk=user.pk)  # a fresh permission cache


@pytest.fixture
def note_reader(db):
    """Staff who may open the notes report, see the notes panel and export notes."""
    return _with_perms(
        staff_user("note-reader"), "portal_app.view_report", "portal_app.view_note", "portal_app.export_note"
    )


@pytest.fixture
def nobody(db):
    return staff_user("nobody")


def _sidebar_urls(client) -> set[str]:
    response = client.get("/admin/")
    return {model["admin_url"] for app in response.context["app_list"] for model in app["models"]}


# -- the test app's page ----------------------------------------------------------------------------------------------


def test_the_declared_page_is_served_and_offered_to_who_may_open_it(client, note_reader):
    Note.objects.create(title="first")
    client.force_login(note_reader)

    response = client.get("/admin/notes-report/")

    assert reverse("portal_app:report") == "/admin/notes-report/"
    assert response.status_code == 200
    assert '<p class="notes-report">1 notes on file.</p>' in response.content.decode()
    assert "/admin/notes-report/" in _sidebar_urls(client)


def test_the_declared_page_refuses_and_hides_from_staff_without_its_permission(client, nobody):
    client.force_login(nobody)

    assert client.get("/admin/notes-report/").status_code == 403
    assert "/admin/notes-report/" not in _sidebar_urls(client)


def test_the_declared_page_sends_anonymous_visitors_to_the_login(client):
    response = client.get("/admin/notes-report/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/admin/notes-report/")


def test_the_page_view_carries_the_declared_permission_for_the_role_matrix():
    from django.urls import resolve

    view = resolve("/admin/notes-report/").func

    assert view.required_permissions == ("portal_app.view_report",)
    assert view.portal_page is collect().pages[-1]  # no position: after the portal's own pages


# -- the test app's panel ---------------------------------------------------------------------------------------------


def test_the_declared_panel_is_computed_stored_and_shown(client, note_reader, redis_client):
    Note.objects.create(title="a")
    Note.objects.create(title="b")

    outcome = dashboard_refresh(panels=["notes"])

    assert outcome == {"notes": "ok"}
    assert DashboardPanel.objects.get(key="notes").data["notes"] == 2
    client.force_login(note_reader)
    response = client.get("/admin/")
    assert [panel.key for panel in response.context["panels"]] == ["notes"]
    assert '<p class="notes-panel">2 notes</p>' in response.content.decode()


def test_the_declared_panel_is_hidden_from_staff_without_its_permission(client, nobody):
    dashboard_refresh(panels=["notes"])
    client.force_login(nobody)

    assert "notes" not in visible_panels(nobody)
    assert client.get("/admin/").context["panels"] == []


def test_the_periodic_refresh_skips_a_panel_until_its_interval_has_passed(redis_client, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from backoffice.ops import selectors

    monkeypatch.setattr(selectors.celery_app.control, "ping", lambda **kwargs: [])
    earlier = timezone.now() - timedelta(seconds=120)
    dashboard_refresh(now=earlier, panels=["notes", "queues"])

    outcome = dashboard_refresh(due_only=True, panels=["notes", "queues"])

    assert outcome == {"queues": "ok"}  # notes refresh every 300 s, queues every 60 s
    assert DashboardPanel.objects.get(key="notes").refreshed_at == earlier


# -- the test app's export target -------------------------------------------------------------------------------------


def test_the_declared_export_target_is_available_and_exports_its_rows(client, note_reader, redis_client):
    Note.objects.create(title="=cmd", words=3)
    Note.objects.create(title="plain", words=7)
    client.force_login(note_reader)

    assert "notes" in [target.key for target in available_targets()]
    assert client.get("/admin/exports/").status_code == 200
    changelist = client.get("/admin/portal_app/note/?words=7").content.decode()
    assert f'href="{reverse("exports:start", args=["notes"])}?words=7"' in changelist
    start = client.get(f"{reverse('exports:start', args=['notes'])}?words=7")
    assert start.status_code == 200 and start.context["count"] == 1
    job, chunks = export_services.export_stream_start(
        user=note_reader, target_key="notes", query_string="", columns=["title", "words"]
    )
    assert b"".join(chunks).decode().splitlines() == ["Title,Words", "plain,7", "'=cmd,3"]  # changelist order: -pk
    assert get_target("notes").model is Note


def test_the_declared_export_target_refuses_staff_without_its_permission(client, nobody):
    client.force_login(nobody)

    assert client.get(reverse("exports:start", args=["notes"])).status_code == 403
    with pytest.raises(PermissionDenied):
        export_services.export_stream_start(user=nobody, target_key="notes", query_string="", columns=["title"])


# -- the collector ----------------------------------------------------------------------------------------------------


def _module(name="tests.fake.portal", **declared) -> types.ModuleType:
    module = types.ModuleType(name)
    vars(module).update(declared)
    return module


def test_an_unknown_declaration_name_is_rejected():
    typo = _module(PAGE=[Page("x:y", "X", "app.perm")])

    with pytest.raises(ImproperlyConfigured, match=r"unknown names PAGE \(known: URLS, PAGES"):
        build([("fake", typo)])


def test_the_column_kinds_imported_from_the_extension_point_are_not_declarations():
    from backoffice.extension_point import IDENTIFIER

    assert build([("fake", _module(IDENTIFIER=IDENTIFIER))]).exports == ()
    with pytest.raises(ImproperlyConfigured, match="unknown names IDENTIFIER"):
        build([("fake", _module(IDENTIFIER="mine"))])


def test_a_declaration_of_the_wrong_kind_is_rejected():
    with pytest.raises(ImproperlyConfigured, match="not a Page"):
        build([("fake", _module(PAGES=[Urls("x/", "x.urls")]))])


def test_the_same_key_declared_by_two_apps_is_rejected():
    panel = Panel(key="notes", title="N", permission="a.b", template="t.html", compute="m.f")

    with pytest.raises(ImproperlyConfigured, match="panel:notes is declared twice: by one and by two"):
        build([("one", _module(PANELS=[panel])), ("two", _module(PANELS=[panel]))])


def test_a_panel_reading_an_undeclared_source_is_rejected():
    panel = Panel(key="copy", title="C", permission="a.b", template="t.html", source="missing")

    with pytest.raises(ImproperlyConfigured, match="source 'missing' is not a declared panel"):
        build([("one", _module(PANELS=[panel]))])


def test_declarations_are_ordered_by_position_then_by_app():
    first, later, unplaced = (Page(f"a:{n}", n, "a.b", position=p) for n, p in (("1", 5), ("2", 50), ("3", 100)))

    portal = build([("one", _module(PAGES=[unplaced, later])), ("two", _module(PAGES=[first]))])

    assert portal.pages == (first, later, unplaced)


def test_the_portal_passes_its_own_system_checks():
    assert portal_declarations_check(None) == []


def test_a_page_not_served_under_its_declaration_fails_the_check(monkeypatch):
    from backoffice import extension_point

    portal = collect()
    wrong = Page("portal_app:report", "Notes report", "portal_app.export_note")
    monkeypatch.setattr(extension_point, "collect", lambda: portal.__class__(**{**vars(portal), "pages": (wrong,)}))

    errors = portal_declarations_check(None)

    assert [error.id for error in errors] == ["portal.E002"]  # the URL is served for another declaration


def test_a_page_view_with_its_own_other_guard_fails_the_check(monkeypatch):
    """Two guards on one page would let the navigation offer a link the view refuses."""
    import django.urls

    from backoffice.accounts.decorators import staff_permission_required
    from backoffice.extension_point import guard_page
    from tests.portal_app import views

    page = next(page for page in collect().pages if page.url_name == "portal_app:report")
    served = guard_page(staff_permission_required("portal_app.export_note")(views.report), page)
    resolver = types.SimpleNamespace(resolve=lambda url: types.SimpleNamespace(func=served))
    monkeypatch.setattr(django.urls, "get_resolver", lambda: resolver)

    errors = [error for error in portal_declarations_check(None) if error.id == "portal.E003"]

    assert [error.msg for error in errors] == [
        "page portal_app:report: its view requires ('portal_app.export_note',), "
        "the page declares 'portal_app.view_report'"
    ]
