"""The points admin: points tasks and rules for operators, accounts with a permission-gated adjustment, and the
history (ledger, progress, action records, the outbox) read-only. Staff actions go to Django's admin log."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from import_export.admin import ExportMixin, ImportExportMixin

from backoffice.admin_mixins import ReadOnlyAdminMixin
from backoffice.extension_point import ExportAdminMixin
from points import matching
from points.forms import AdjustmentForm, ReversalForm, SimulationForm, UrlTestForm
from points.models import (
    BUSINESS_ID_GROUP,
    Account,
    Action,
    ActionRecord,
    LedgerEntry,
    PendingEvent,
    Rule,
    RuleProgress,
    Status,
)
from points.resources import LedgerEntryResource, RuleResource
from points.selectors import rule_simulate
from points.services import (
    InsufficientPoints,
    actions_set_status,
    actions_soft_delete,
    ledger_reverse,
    points_adjust,
    rules_set_status,
    rules_soft_delete,
)


class DeletedFilter(admin.SimpleListFilter):
    title = _("deleted")
    parameter_name = "deleted"

    def lookups(self, request, model_admin):
        return [("no", _("No")), ("yes", _("Yes"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(deleted_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(deleted_at__isnull=True)
        return queryset


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """History: viewable, never added, changed or deleted through the admin."""


@admin.register(Action)
class ActionAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "method", "path_pattern", "success", "status", "deleted_at")
    list_filter = ("status", "method", DeletedFilter)
    search_fields = ("code", "name", "path_pattern")
    readonly_fields = ("created_at", "updated_at", "deleted_at")
    actions = ("activate", "retire", "soft_delete")
    change_form_template = "admin/points/action/change_form.html"

    def has_delete_permission(self, request, obj=None):
        return False  # records point at actions: retire or soft-delete instead

    @admin.display(description=_("success when"))
    def success(self, action):
        if not action.success_field:
            return _("2xx")
        return f"2xx, {action.success_field} == {action.success_value}"

    def _status(self, request, queryset, status, label):
        ids = list(queryset.values_list("pk", flat=True))
        changed = actions_set_status(action_ids=ids, status=status, actor=request.user)
        self.message_user(
            request,
            ngettext("%(n)d points task %(label)s.", "%(n)d points tasks %(label)s.", changed)
            % {"n": changed, "label": label},
        )

    @admin.action(description=_("Activate selected points tasks"), permissions=["change"])
    def activate(self, request, queryset):
        self._status(request, queryset, Status.ACTIVE, _("activated"))

    @admin.action(description=_("Retire selected points tasks"), permissions=["change"])
    def retire(self, request, queryset):
        self._status(request, queryset, Status.RETIRED, _("retired"))

    @admin.action(description=_("Delete selected points tasks (soft: records keep them)"), permissions=["change"])
    def soft_delete(self, request, queryset):
        objects = list(queryset)
        changed = actions_soft_delete(action_ids=[a.pk for a in objects], actor=request.user)
        self.message_user(request, ngettext("%d points task deleted.", "%d points tasks deleted.", changed) % changed)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)  # post_save bumps the compiled actions' version

    def get_urls(self):
        return [
            path(
                "test-url/",
                self.admin_site.admin_view(self.test_url_view),
                name="points_action_test_url",
            ),
            *super().get_urls(),
        ]

    def test_url_view(self, request):
        """What a method and path would match: the pattern being edited, and every active points task."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = UrlTestForm(request.GET)
        if not form.is_valid():
            return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
        method, url_path, pattern = (form.cleaned_data[k] for k in ("method", "path", "pattern"))
        result = {"method": method, "path": url_path, "pattern": None}
        if pattern:
            try:
                compiled = matching.pattern_compile(pattern)
            except matching.PatternError as exc:
                result["pattern"] = {"valid": False, "error": str(exc)}
            else:
                found = compiled.fullmatch(url_path)
                result["pattern"] = {
                    "valid": True,
                    "matches": found is not None,
                    "business_id": (found.groupdict().get(BUSINESS_ID_GROUP) or "") if found else None,
                }
        result["active"] = [
            {"code": action.code, "business_id": business_id}
            for action, business_id in matching.index.match(method, url_path)
        ]
        return JsonResponse(result)


@admin.register(Rule)
class RuleAdmin(ExportAdminMixin, ImportExportMixin, admin.ModelAdmin):
    resource_classes = [RuleResource]
    list_display = (
        "name",
        "action",
        "kind",
        "period",
        "points",
        "required_count",
        "awardee_cap",
        "per_user_cap",
        "starts_at",
        "ends_at",
        "state",
    )
    list_filter = ("status", "kind", "period", "action", DeletedFilter)
    search_fields = ("name", "action__code", "action__name")
    list_select_related = ("action",)
    readonly_fields = ("created_at", "updated_at", "deleted_at")
    actions = ("activate", "retire", "soft_delete")
    change_form_template = "admin/points/rule/change_form.html"
    fieldsets = (
        (None, {"fields": ("name", "action", "status", "points")}),
        (_("When it awards"), {"fields": ("kind", "period", "required_count", "allow_repeat_business_id")}),
        (_("Caps"), {"fields": ("awardee_cap", "awardee_cap_scope", "per_user_cap")}),
        (_("Window"), {"fields": ("starts_at", "ends_at")}),
        (_("History"), {"fields": ("created_at", "updated_at", "deleted_at")}),
    )

    def has_delete_permission(self, request, obj=None):
        return False  # ledger entries point at rules: retire or soft-delete instead

    @admin.display(description=_("status"), ordering="status")
    def state(self, rule):
        # One column for status and soft deletion keeps the list within 1440 px; the date is on the rule's page.
        if rule.deleted_at:
            return _("deleted (was %(status)s)") % {"status": rule.get_status_display()}
        return rule.get_status_display()

    def has_import_permission(self, request):
        return request.user.has_perm("points.import_rule")

    def has_export_permission(self, request):
        return request.user.has_perm("points.export_rule")

    def _status(self, request, queryset, status, label):
        changed = rules_set_status(
            rule_ids=list(queryset.values_list("pk", flat=True)), status=status, actor=request.user
        )
        skipped = queryset.count() - len(changed)
        self.message_user(
            request,
            ngettext("%(n)d rule %(label)s.", "%(n)d rules %(label)s.", len(changed))
            % {"n": len(changed), "label": label},
        )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%d rule was not activated: it does not validate (open it to see why).",
                    "%d rules were not activated: they do not validate (open them to see why).",
                    skipped,
                )
                % skipped,
                level=messages.WARNING,
            )

    @admin.action(description=_("Activate selected rules"), permissions=["change"])
    def activate(self, request, queryset):
        self._status(request, queryset, Status.ACTIVE, _("activated"))

    @admin.action(description=_("Retire selected rules"), permissions=["change"])
    def retire(self, request, queryset):
        self._status(request, queryset, Status.RETIRED, _("retired"))

    @admin.action(description=_("Delete selected rules (soft: the ledger keeps them)"), permissions=["change"])
    def soft_delete(self, request, queryset):
        objects = list(queryset)
        changed = rules_soft_delete(rule_ids=[r.pk for r in objects], actor=request.user)
        self.message_user(request, ngettext("%d rule deleted.", "%d rules deleted.", changed) % changed)

    def get_urls(self):
        return [
            path(
                "<int:rule_id>/simulate/",
                self.admin_site.admin_view(self.simulate_view),
                name="points_rule_simulate",
            ),
            *super().get_urls(),
        ]

    def simulate_view(self, request, rule_id: int):
        """Replay the last N days of recorded actions against the rule (a draft, typically); writes nothing."""
        if not request.user.has_perm("points.simulate_rule"):
            raise PermissionDenied
        rule = get_object_or_404(Rule.all_objects.select_related("action"), pk=rule_id)
        form = SimulationForm(request.GET or None)
        result = rule_simulate(rule=rule, days=form.cleaned_data["days"]) if form.is_valid() else None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Simulate %(rule)s") % {"rule": rule},
            "rule": rule,
            "form": form,
            "result": result,
        }
        return TemplateResponse(request, "admin/points/rule/simulate.html", context)


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ("user", "balance", "updated_at", "entries_link")
    search_fields = ("user__username", "user__email")
    list_select_related = ("user",)
    readonly_fields = ("user", "balance", "created_at", "updated_at")
    change_form_template = "admin/points/account/change_form.html"

    @admin.display(description=_("ledger"))
    def entries_link(self, account):
        url = reverse("admin:points_ledgerentry_changelist") + f"?account__id__exact={account.pk}"
        return format_html('<a href="{}">{}</a>', url, _("entries"))

    def get_urls(self):
        return [
            path(
                "<int:account_id>/adjust/",
                self.admin_site.admin_view(self.adjust_view),
                name="points_account_adjust",
            ),
            *super().get_urls(),
        ]

    def adjust_view(self, request, account_id: int):
        if not request.user.has_perm("points.adjust_account"):
            raise PermissionDenied
        account = get_object_or_404(Account.objects.select_related("user"), pk=account_id)
        form = AdjustmentForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            amount, reason = form.cleaned_data["amount"], form.cleaned_data["reason"]
            try:
                points_adjust(user_id=account.user_id, amount=amount, reason=reason, staff_user=request.user)
            except InsufficientPoints as exc:
                form.add_error(
                    "amount", _("The balance is %(balance)d: it cannot go below zero.") % {"balance": exc.balance}
                )
            else:
                self.message_user(request, _("Balance adjusted by %(amount)+d points.") % {"amount": amount})
                return redirect("admin:points_account_change", account.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Adjust the balance of %(user)s") % {"user": account.user},
            "account": account,
            "object": account,
            "action_label": _("Adjust balance"),
            "submit_label": _("Adjust"),
            "form": form,
        }
        return TemplateResponse(request, "admin/points/account/adjust.html", context)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ExportAdminMixin, ExportMixin, ReadOnlyAdmin):
    resource_classes = [LedgerEntryResource]
    list_display = (
        "serial_number",
        "account",
        "kind",
        "amount",
        "balance_before",
        "balance_after",
        "rule",
        "order_number",
        "created_by",
        "created_at",
    )
    list_filter = ("kind", "created_at", "rule")
    search_fields = ("=serial_number", "=idempotency_key", "=order_number", "account__user__username")
    date_hierarchy = "created_at"
    list_select_related = ("account__user", "rule", "created_by")
    raw_id_fields = ("account",)
    change_form_template = "admin/points/ledgerentry/change_form.html"

    def has_export_permission(self, request):
        return request.user.has_perm("points.view_ledgerentry") and super().has_export_permission(request)

    def get_urls(self):
        return [
            path(
                "<int:entry_id>/reverse/",
                self.admin_site.admin_view(self.reverse_view),
                name="points_ledgerentry_reverse",
            ),
            *super().get_urls(),
        ]

    def reverse_view(self, request, entry_id: int):
        """A correction is a new entry: the reversal, linked to the one it cancels."""
        if not request.user.has_perm("points.adjust_account"):
            raise PermissionDenied
        entry = get_object_or_404(LedgerEntry.objects.select_related("account__user"), pk=entry_id)
        form = ReversalForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                reversal = ledger_reverse(
                    entry_id=entry.pk, reason=form.cleaned_data["reason"], staff_user=request.user
                )
            except InsufficientPoints as exc:
                form.add_error(
                    None, _("The balance is %(balance)d: it cannot go below zero.") % {"balance": exc.balance}
                )
            except ValueError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, _("Entry %(serial)s reversed.") % {"serial": entry.serial_number})
                return redirect("admin:points_ledgerentry_change", reversal.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Reverse entry %(serial)s") % {"serial": entry.serial_number},
            "entry": entry,
            "object": entry,
            "action_label": _("Reverse"),
            "submit_label": _("Reverse"),
            "form": form,
        }
        return TemplateResponse(request, "admin/points/ledgerentry/reverse.html", context)


@admin.register(RuleProgress)
class RuleProgressAdmin(ReadOnlyAdmin):
    list_display = ("user", "rule", "period_start", "last_period", "count", "awards", "deadline")
    list_filter = ("rule", "period_start")
    search_fields = ("user__username", "rule__name")
    date_hierarchy = "period_start"
    list_select_related = ("user", "rule")


@admin.register(ActionRecord)
class ActionRecordAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "user", "action", "business_id", "occurred_at", "recorded_at", "country")
    list_filter = ("action", "occurred_at")
    search_fields = ("=event_id", "user__username", "=business_id")
    date_hierarchy = "occurred_at"
    list_select_related = ("user", "action")


@admin.register(PendingEvent)
class PendingEventAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "user_id", "action_id", "business_id", "occurred_at", "created_at")
    search_fields = ("=event_id",)
    date_hierarchy = "created_at"
