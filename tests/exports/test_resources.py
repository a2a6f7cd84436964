from decimal import Decimal

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.utils import timezone
from django_celery_results.models import TaskResult
from import_export import resources

from backoffice.exports.resources import (
    FormulaSafeModelResource,
    ImportExportPermissionsMixin,
    export_permission,
    formula_safe,
    import_permission,
)

pytestmark = pytest.mark.django_db


class ResultResource(FormulaSafeModelResource):
    class Meta:
        model = TaskResult
        fields = ("id", "task_name", "status")


def test_formula_safe_resource_neutralises_text_and_keeps_numbers(make_results):
    (row,) = make_results({"task_name": "=SUM(A1:A9)", "status": "-1"})

    dataset = ResultResource().export(TaskResult.objects.all())

    assert dataset.headers == ["id", "task_name", "status"]
    assert list(dataset) == [(str(row.pk), "'=SUM(A1:A9)", "'-1")]


def test_formula_safe_wraps_a_stock_resource_once():
    class Stock(resources.ModelResource):
        class Meta:
            model = TaskResult
            fields = ("id", "task_name")

    safe = formula_safe(Stock)
    assert formula_safe(Stock) is safe and formula_safe(safe) is safe
    assert safe._meta.fields == ("id", "task_name")


def test_history_tables_are_never_importable_and_others_need_their_permission():
    from orders.models import Order, OrderEvent
    from points.models import LedgerEntry, Rule

    assert import_permission(TaskResult) is None
    assert import_permission(LedgerEntry) is None
    assert import_permission(OrderEvent) is None
    assert import_permission(Rule) == "points.import_rule"
    assert export_permission(LedgerEntry) == "portal_exports.export_ledger"
    assert export_permission(Order) == "portal_exports.export_orders"
    assert export_permission(Rule) == "points.export_rule"


def test_permissions_mixin_on_an_admin(make_analyst, django_user_model):
    class ResultAdmin(ImportExportPermissionsMixin, admin.ModelAdmin):
        pass

    model_admin = ResultAdmin(TaskResult, admin.site)
    request = RequestFactory().get("/")
    request.user = make_analyst()
    assert model_admin.has_export_permission(request) is True
    assert model_admin.has_import_permission(request) is False
    request.user = django_user_model.objects.create_superuser("root", "r@example.com", "x")
    assert model_admin.has_import_permission(request) is False  # not even a superuser imports history


def _order(django_user_model, **fields):
    from orders.models import Order

    user = django_user_model.objects.create_user(username="buyer", password="x")
    now = timezone.now()
    return Order.objects.create(
        number="N-1", user=user, subtotal=Decimal("10.00"), total=Decimal("10.00"), expires_at=now, **fields
    )


def test_stock_orders_export_needs_the_export_permission_and_is_formula_safe(
    client, make_analyst, django_user_model, grant
):
    _order(django_user_model, cancel_reason='=HYPERLINK("http://evil")')
    analyst = make_analyst()
    from orders.models import Order

    order_admin = admin.site._registry[Order]
    request = RequestFactory().get("/")

    analyst.user_permissions.remove(*analyst.user_permissions.filter(codename="export_orders"))
    request.user = type(analyst).objects.get(pk=analyst.pk)
    assert order_admin.has_export_permission(request) is False
    client.force_login(request.user)
    assert client.get("/admin/orders/order/export/").status_code == 403

    request.user = grant(analyst, "portal_exports.export_orders")
    assert order_admin.has_export_permission(request) is True
    dataset = order_admin.get_data_for_export(request, order_admin.get_queryset(request), export_form=None)
    row = dict(zip(dataset.headers, dataset[0], strict=True))
    assert row["cancel_reason"] == '\'=HYPERLINK("http://evil")'
    assert row["user"] == "buyer" and row["number"] == "N-1"
    assert row["total"] == "10.00"  # a number widget: never prefixed


def test_ledger_stock_export_is_neutralised_once_and_needs_both_permissions(make_analyst, grant, django_user_model):
    from points.models import LedgerEntry
    from tests.exports.test_services import _ledger_entries

    _ledger_entries(django_user_model)
    ledger_admin = admin.site._registry[LedgerEntry]
    request = RequestFactory().get("/")
    analyst = make_analyst()
    analyst.user_permissions.remove(*analyst.user_permissions.filter(codename="export_ledger"))
    request.user = type(analyst).objects.get(pk=analyst.pk)
    assert ledger_admin.has_export_permission(request) is False  # view_ledgerentry alone is not enough

    request.user = grant(analyst, "portal_exports.export_ledger")
    assert ledger_admin.has_export_permission(request) is True
    dataset = ledger_admin.get_data_for_export(request, ledger_admin.get_queryset(request), export_form=None)
    rows = [dict(zip(dataset.headers, row, strict=True)) for row in dataset]
    assert [(row["reason"], row["order_number"], row["amount"]) for row in rows] == [
        ("'-20 for order", "'@O-1", "-20"),
        ("welcome", "", "50"),
    ]
    assert {row["user"] for row in rows} == {"'=owner"}
