"""What exports add to the portal (collected by backoffice.extension_point): the export pages, and the rules
that every ExportAdminMixin admin applies. The export targets themselves are declared by the apps that own the
data (points, orders, results)."""

from backoffice.extension_point import Urls

URLS = [Urls("admin/exports/", "backoffice.exports.urls")]
EXPORTER = "backoffice.exports.admin.export_rules"  # what ExportAdminMixin asks (see admin.py)
