"""Admin pieces every app shares. Points and orders may use them: they are the portal's infrastructure, not
one of its pages."""


class ReadOnlyAdminMixin:
    """History (ledger, results, order events, task runs): viewable with the view permission, never added,
    changed or deleted through the admin. Works for ModelAdmins and inlines alike."""

    show_full_result_count = False  # one COUNT(*) per page, not two, on tables that grow without bound

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
