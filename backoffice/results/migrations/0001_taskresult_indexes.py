"""Indexes on django-celery-results' table for the portal's results pages and retention.

The admin changelist orders by (-date_done, -id) (Django adds the pk for a deterministic order), which
the package's single-column date_done index cannot serve without a sort of the whole table; filters by
status, task and schedule keep that order; retention deletes by task name and age.
Plain SQL (CREATE INDEX IF NOT EXISTS) because the table belongs to another app; the same statement
works on PostgreSQL and SQLite.
"""

from django.db import migrations

TABLE = "django_celery_results_taskresult"
INDEXES = {
    "portal_results_done_id": "date_done DESC, id DESC",
    "portal_results_status_done": "status, date_done DESC, id DESC",
    "portal_results_task_done": "task_name, date_done DESC, id DESC",
    "portal_results_periodic_done": "periodic_task_name, date_done DESC, id DESC",
}


class Migration(migrations.Migration):
    dependencies = [("django_celery_results", "0014_alter_taskresult_status")]

    operations = [
        migrations.RunSQL(
            sql=f"CREATE INDEX IF NOT EXISTS {name} ON {TABLE} ({columns})",
            reverse_sql=f"DROP INDEX IF EXISTS {name}",
        )
        for name, columns in INDEXES.items()
    ]
