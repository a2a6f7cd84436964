from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ExportsConfig(AppConfig):
    name = "backoffice.exports"
    label = "portal_exports"
    verbose_name = _("Exports")

    def ready(self):
        from django.db.backends.signals import connection_created

        from backoffice.exports import checks  # noqa: F401 - registers the system check
        from backoffice.exports.rendering import register_sqlite_functions

        # On SQLite the export rows query calls the Python rendering (PostgreSQL has it in SQL).
        connection_created.connect(register_sqlite_functions, dispatch_uid="exports-sqlite-functions")
