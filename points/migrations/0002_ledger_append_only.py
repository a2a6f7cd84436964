"""On PostgreSQL the database itself refuses UPDATE and DELETE of ledger rows (the ledger is append-only).

TRUNCATE is left alone (a row trigger does not see it), so test databases can still be emptied.
SQLite has no equivalent worth the cost here; the services never update or delete entries on any database.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION points_ledger_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'points ledger entries are append-only: ' || TG_OP || ' refused',
        ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS points_ledger_append_only ON points_ledgerentry;
CREATE TRIGGER points_ledger_append_only
    BEFORE UPDATE OR DELETE ON points_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION points_ledger_refuse_change();
"""

DROP = """
DROP TRIGGER IF EXISTS points_ledger_append_only ON points_ledgerentry;
DROP FUNCTION IF EXISTS points_ledger_refuse_change();
"""


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("points", "0001_ledger")]

    operations = [migrations.RunPython(_on_postgresql(CREATE), _on_postgresql(DROP))]
