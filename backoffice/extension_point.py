"""The portal's extension point: what each app adds to the portal, declared in the app's own `portal.py`.

An installed app joins the portal by shipping a `portal.py` module, found the way `roles.py` is (one module per
app, named for its role, gathered by one collector). It may declare any of these names, and no other upper-case
name (a typo such as `PAGE = [...]` is an error at start-up, not a silently missing page):

    URLS       [Urls(prefix, module)]  where the app's urls module is served; its `app_name` is the namespace
    PAGES      [Page(url_name, label, permission)]  a link in the navigation, and that view's guard
    PANELS     [Panel(key, title, permission, template, compute=...)]  a dashboard panel
    EXPORTS    [ExportTarget(key, label, model_label, permission, columns)]  data analysts may export
    DASHBOARD  "dotted.path"  the reader that turns declared panels into the index's figures (one app: ops)
    EXPORTER   "dotted.path"  the export rules ExportAdminMixin applies (one app: exports)

The admin site collects the declarations (`backoffice/sites.py` imports no feature app), the root URLconf serves
the mounts (`portal_urlpatterns()`), and a declared page's view is wrapped with the declared permission when it is
mounted, so the navigation can never offer a link that the view refuses. README.md, "Adding a feature to the
portal", walks through an example.

This module is shared infrastructure: `points` and `orders` may import it (their `portal.py` and their admins'
ExportAdminMixin), and it imports no feature app.
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType

from django.apps import apps
from django.contrib import admin
from django.core import checks
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models
from django.urls import URLPattern, URLResolver, include, path
from django.utils.functional import Promise
from django.utils.module_loading import import_string, module_has_submodule
from django.views.decorators.cache import never_cache

from backoffice.accounts.decorators import staff_permission_required

MODULE_NAME = "portal"
LIST_DECLARATIONS = ("URLS", "PAGES", "PANELS", "EXPORTS")
SINGLE_DECLARATIONS = ("DASHBOARD", "EXPORTER")  # at most one app provides each
_MISSING = object()
DEFAULT_POSITION = 100  # declarations without a position follow the declared ones, in INSTALLED_APPS order


# -- declarations ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Urls:
    """Serve the urls module `module` at `prefix` (relative to the site root, e.g. "admin/console/")."""

    prefix: str
    module: str


@dataclass(frozen=True)
class Page:
    """A page in the portal's navigation ("Operations"), shown to the users who hold `permission`.

    The view named `url_name` is guarded by the same permission where its app's URLS are mounted: anonymous
    visitors go to the login page, staff without the permission get 403.
    """

    url_name: str  # "namespace:name", served by one of the declaring app's URLS
    label: str | Promise
    permission: str  # "app_label.codename"
    position: int = DEFAULT_POSITION


@dataclass(frozen=True)
class Panel:
    """A dashboard panel: figures computed off the request by `compute`, shown through `template`.

    `compute(now=...)` runs in the periodic refresh task (never in a page request) and returns JSON-ready
    figures, or None when its source has nothing yet; `shape(data)` prepares stored figures for the template
    (parsed dates, chart geometry) without touching the database. Both are dotted paths, imported when used.
    A panel with a `source` shows another panel's stored figures instead of computing its own.
    """

    key: str
    title: str | Promise
    permission: str  # "app_label.codename" of what the panel shows
    template: str  # rendered with `panel` (key, title, data, age) in the context
    compute: str | None = None
    shape: str | None = None
    source: str | None = None
    refresh_seconds: int = 60  # how often the figures are recomputed; older than 3 refreshes reads as stale
    position: int = DEFAULT_POSITION

    @property
    def source_key(self) -> str:
        return self.source or self.key

    @property
    def stale_after_seconds(self) -> int:
        return 3 * self.refresh_seconds

    def computed(self, *, now) -> dict | None:
        return import_string(self.compute)(now=now)

    def shaped(self, data: dict) -> dict:
        return import_string(self.shape)(dict(data)) if self.shape else dict(data)


# Column kinds a declaration may name; the exports app decides how each is written (backoffice/exports/).
NUMBER = "number"
TEXT = "text"
IDENTIFIER = "identifier"  # text that looks like a number (serial and order numbers): must stay text
_NUMERIC_FIELDS = (models.IntegerField, models.DecimalField, models.FloatField, models.AutoField)


@dataclass(frozen=True)
class Column:
    path: str  # a field or a related field path (`account__user__username`)
    label: str | Promise
    kind: str | None = None  # NUMBER, TEXT, IDENTIFIER...; None: numeric model fields are NUMBER, others TEXT


@dataclass(frozen=True)
class ExportTarget:
    """Data analysts may export: the model, its columns (in file order), and the permission that allows it.

    Which rows: the model's admin on the portal's site (`admin.site.get_model_admin(model)`) provides the
    filters, search and ordering, so an export holds exactly the rows its changelist shows. That admin must
    inherit ExportAdminMixin (system check portal.E004).
    """

    key: str
    label: str | Promise
    model_label: str  # "app_label.ModelName"
    permission: str  # "app_label.codename" that allows exporting this data
    columns: tuple[Column, ...]
    importable: bool = False  # ledgers, order events and task results are history: never imported
    default_columns: tuple[str, ...] = field(default=())  # preselected on the form; empty means all

    @property
    def model(self) -> type[models.Model]:
        return apps.get_model(self.model_label)

    @property
    def is_available(self) -> bool:
        try:
            self.model  # noqa: B018 - resolving is the check
        except LookupError:
            return False
        return True

    def column(self, path: str) -> Column:
        for column in self.columns:
            if column.path == path:
                return column
        raise KeyError(path)

    def kind_of(self, column: Column) -> str:
        if column.kind:
            return column.kind
        return NUMBER if isinstance(self.model_field(column.path), _NUMERIC_FIELDS) else TEXT

    def model_field(self, path: str) -> models.Field:
        model = self.model
        parts = path.split("__")
        for part in parts[:-1]:
            model = model._meta.get_field(part).related_model
        found = model._meta.get_field(parts[-1])
        return found.target_field if found.is_relation and found.many_to_one else found

    def column_problems(self) -> list[str]:
        problems = []
        for column in self.columns:
            try:
                self.model_field(column.path)
            except (FieldDoesNotExist, AttributeError) as exc:
                problems.append(f"{self.key}: column {column.path!r}: {exc}")
        return problems


# Each list declaration: the class of its items, and how an item is named (unique across all apps).
_KINDS = {
    "URLS": (Urls, lambda item: f"urls:{item.prefix}"),
    "PAGES": (Page, lambda item: f"page:{item.url_name}"),
    "PANELS": (Panel, lambda item: f"panel:{item.key}"),
    "EXPORTS": (ExportTarget, lambda item: f"export:{item.key}"),
}


# -- collection -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Portal:
    """Everything the installed apps declare, in display order."""

    urls: tuple[Urls, ...]
    pages: tuple[Page, ...]
    panels: tuple[Panel, ...]
    exports: tuple[ExportTarget, ...]
    dashboard: str | None
    exporter: str | None
    declared_by: dict[str, str]  # declaration key ("page:ops:workers", ...) -> the app that declared it

    def panel(self, key: str) -> Panel:
        return next(panel for panel in self.panels if panel.key == key)

    def export(self, key: str) -> ExportTarget:
        return next(target for target in self.exports if target.key == key)


def portal_modules() -> list[tuple[str, ModuleType]]:
    """(app label, its portal module) for every installed app that has one."""
    found = []
    for config in apps.get_app_configs():
        if module_has_submodule(config.module, MODULE_NAME):
            found.append((config.label, importlib.import_module(f"{config.name}.{MODULE_NAME}")))
    return found


def _declared_names(module: ModuleType) -> list[str]:
    """Upper-case names the module defines; this module's own vocabulary (IDENTIFIER, ...) imported as it is
    does not count."""
    here = globals()
    return [
        name
        for name, value in vars(module).items()
        if name.isupper() and not name.startswith("_") and here.get(name, _MISSING) is not value
    ]


def build(modules: list[tuple[str, ModuleType]]) -> Portal:
    """Gather and validate the declarations of these portal modules. ImproperlyConfigured names the mistake."""
    lists: dict[str, list] = {name: [] for name in LIST_DECLARATIONS}
    singles: dict[str, str | None] = dict.fromkeys(SINGLE_DECLARATIONS)
    declared_by: dict[str, str] = {}

    def claim(key: str, app_label: str) -> None:
        if key in declared_by:
            raise ImproperlyConfigured(f"{key} is declared twice: by {declared_by[key]} and by {app_label}")
        declared_by[key] = app_label

    for app_label, module in modules:
        where = module.__name__
        unknown = sorted(set(_declared_names(module)) - set(LIST_DECLARATIONS) - set(SINGLE_DECLARATIONS))
        if unknown:
            known = ", ".join((*LIST_DECLARATIONS, *SINGLE_DECLARATIONS))
            raise ImproperlyConfigured(f"{where} declares unknown names {', '.join(unknown)} (known: {known})")
        for name in SINGLE_DECLARATIONS:
            value = getattr(module, name, None)
            if value is None:
                continue
            if not isinstance(value, str):
                raise ImproperlyConfigured(f"{where}.{name} must be a dotted path")
            claim(name, app_label)
            singles[name] = value
        for name in LIST_DECLARATIONS:
            kind, key = _KINDS[name]
            for item in getattr(module, name, ()):
                if not isinstance(item, kind):
                    raise ImproperlyConfigured(f"{where}.{name} holds {item!r}, not a {kind.__name__}")
                claim(key(item), app_label)
                lists[name].append(item)
    for panel in lists["PANELS"]:
        if (panel.compute is None) == (panel.source is None):
            raise ImproperlyConfigured(f"panel {panel.key}: declare either compute or source, not both or neither")
        if panel.source is not None and f"panel:{panel.source}" not in declared_by:
            raise ImproperlyConfigured(f"panel {panel.key}: its source {panel.source!r} is not a declared panel")
    return Portal(
        urls=tuple(lists["URLS"]),
        pages=tuple(sorted(lists["PAGES"], key=lambda page: page.position)),
        panels=tuple(sorted(lists["PANELS"], key=lambda panel: panel.position)),
        exports=tuple(lists["EXPORTS"]),
        dashboard=singles["DASHBOARD"],
        exporter=singles["EXPORTER"],
        declared_by=declared_by,
    )


@cache
def collect() -> Portal:
    """The declarations of every installed app's portal module (read once per process)."""
    return build(portal_modules())


def exporter():
    """The export rules ExportAdminMixin applies, or None when no installed app provides them."""
    dotted = collect().exporter
    return import_string(dotted) if dotted else None


# -- URLs -----------------------------------------------------------------------------------------------------------


def guard_page(view: Callable, page: Page) -> Callable:
    """The view behind the page's own permission, never cached (as admin pages are)."""
    guarded = never_cache(staff_permission_required(page.permission)(view))
    guarded.portal_page = page
    guarded.view_required_permissions = getattr(view, "required_permissions", None)  # a second guard: E003
    return guarded


def _guarded(patterns, namespace: str, pages: dict[str, Page]) -> list:
    guarded = []
    for pattern in patterns:
        if isinstance(pattern, URLPattern) and f"{namespace}:{pattern.name}" in pages:
            page = pages[f"{namespace}:{pattern.name}"]
            pattern = URLPattern(
                pattern.pattern, guard_page(pattern.callback, page), pattern.default_args, pattern.name
            )
        guarded.append(pattern)
    return guarded


def portal_urlpatterns() -> list[URLResolver]:
    """Every declared URLS mount, with each declared page's view behind its page's permission."""
    portal = collect()
    pages = {page.url_name: page for page in portal.pages}
    resolvers = []
    for mount in portal.urls:
        module = importlib.import_module(mount.module)
        namespace = getattr(module, "app_name", None)
        if not namespace:
            raise ImproperlyConfigured(f"{mount.module} needs an app_name: it is the namespace of its pages")
        patterns = _guarded(module.urlpatterns, namespace, pages)
        resolvers.append(path(mount.prefix, include((patterns, namespace), namespace=namespace)))
    return resolvers


# -- the admin side of exports ----------------------------------------------------------------------------------------


class ExportAdminMixin:
    """For the ModelAdmin of an export target, or of any model with django-import-export's export button.

    Inheriting it is how an admin says "my rows may be exported": its changelist offers the background export
    of the rows it shows, and django-import-export's stock export (where the admin has it) needs the target's
    export permission, writes formula-safe cells, and refuses import into history tables. The rules themselves
    belong to the app that declares EXPORTER (backoffice.exports); without one, stock export is refused.
    Put it first among the bases, so that it sees the import-export mixins' methods through super().
    """

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        rules = exporter()
        return rules.changelist_response(self, request, response) if rules else response

    def has_export_permission(self, request):
        rules = exporter()
        return bool(rules) and rules.may_export(self, request) and super().has_export_permission(request)

    def has_import_permission(self, request):
        rules = exporter()
        return bool(rules) and rules.may_import(self, request) and super().has_import_permission(request)

    def get_export_resource_classes(self, request):
        rules = exporter()
        return rules.export_resource_classes(self, super().get_export_resource_classes(request)) if rules else []

    def export_action(self, request):
        """django-import-export's Export button; the rules may hand it over to the portal's export pages."""
        rules = exporter()
        return (
            rules.export_action(self, request, stock=super().export_action) if rules else super().export_action(request)
        )


# -- system checks ----------------------------------------------------------------------------------------------------


def _site_registry(site) -> list[tuple[type[models.Model], admin.ModelAdmin]]:
    """(model, admin) pairs of the site, through the public API."""
    pairs = []
    for model in apps.get_models():
        if site.is_registered(model):
            pairs.append((model, site.get_model_admin(model)))
    return pairs


@checks.register()
def portal_declarations_check(app_configs, **kwargs):
    """portal.E001: a portal module that cannot be collected; E002: a page whose URL is not mounted;
    E003: a page's view already guarded by another permission; E004: an export target whose admin does not
    inherit ExportAdminMixin; E005: a stock import-export admin without it (its exports would not be
    formula-safe)."""
    try:
        portal = collect()
    except (ImproperlyConfigured, ImportError) as exc:
        return [checks.Error(str(exc), id="portal.E001")]
    errors = []
    errors.extend(_page_problems(portal))
    site = admin.site
    for target in portal.exports:
        if not target.is_available:
            continue
        model = target.model
        if not site.is_registered(model):
            errors.append(
                checks.Error(f"export target {target.key}: {target.model_label} has no admin", id="portal.E004")
            )
        elif not isinstance(site.get_model_admin(model), ExportAdminMixin):
            errors.append(
                checks.Error(
                    f"export target {target.key}: the admin of {target.model_label} does not inherit ExportAdminMixin",
                    hint="class MyAdmin(ExportAdminMixin, ..., admin.ModelAdmin), from backoffice.extension_point",
                    id="portal.E004",
                )
            )
    for model, model_admin in _site_registry(site):
        if hasattr(model_admin, "get_export_resource_classes") and not isinstance(model_admin, ExportAdminMixin):
            errors.append(
                checks.Error(
                    f"{model._meta.label}: the admin has django-import-export's export without ExportAdminMixin",
                    hint="its stock exports would not be formula-safe nor need the export permission",
                    id="portal.E005",
                )
            )
    return errors


def _page_problems(portal: Portal) -> list[checks.CheckMessage]:
    from django.urls import NoReverseMatch, get_resolver, reverse

    problems = []
    for page in portal.pages:
        try:
            url = reverse(page.url_name)
        except NoReverseMatch:
            problems.append(
                checks.Error(f"page {page.url_name}: no such URL among the declared URLS", id="portal.E002")
            )
            continue
        callback = get_resolver().resolve(url).func
        if getattr(callback, "portal_page", None) != page:
            problems.append(
                checks.Error(f"page {page.url_name}: its URL is not served by a declared URLS mount", id="portal.E002")
            )
        elif callback.view_required_permissions not in (None, (page.permission,)):
            problems.append(
                checks.Error(
                    f"page {page.url_name}: its view requires {callback.view_required_permissions}, "
                    f"the page declares {page.permission!r}",
                    hint="let the page declaration guard the view: drop the view's own staff_permission_required",
                    id="portal.E003",
                )
            )
    return problems
