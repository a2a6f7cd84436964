"""Set-based writes of the points tables, shared by the batch processing of events and by batch refunds.

Lock order is the same everywhere, so two writers never deadlock: accounts by id first.
"""

from django.db import connection

from points.models import Account

LEDGER_FIELDS = (
    "serial_number",
    "account_id",
    "amount",
    "balance_before",
    "balance_after",
    "kind",
    "order_number",
    "idempotency_key",
    "reason",
    "language",
    "country",
    "location",
    "created_by_id",
    "created_at",
    "rule_id",
    "progress_id",
    "source_id",
    "reverses_id",
)


def accounts_lock_many(user_ids: list[int]) -> dict[int, Account]:
    """The users' accounts locked for update in id order, created on demand; keyed by user id."""
    existing = set(Account.objects.filter(user_id__in=user_ids).values_list("user_id", flat=True))
    missing = [Account(user_id=user_id) for user_id in user_ids if user_id not in existing]
    if missing:
        Account.objects.bulk_create(missing, ignore_conflicts=True)
    locked = Account.objects.select_for_update().filter(user_id__in=user_ids).order_by("pk")
    return {account.user_id: account for account in locked.only("pk", "user_id", "balance")}


def rows_insert(model, rows: list, attnames: tuple[str, ...]) -> None:
    """Insert many rows whose ids nobody reads back from this call.

    On PostgreSQL, COPY: the rows stream as text, without an INSERT with thousands of placeholders for the
    driver to quote one by one (which cost more than the database's own work in a 500-event batch). The
    database checks constraints and unique keys on COPY exactly as on INSERT. Elsewhere, bulk_create.
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create(rows)
        return
    meta = model._meta
    fields = [next(f for f in meta.concrete_fields if f.attname == name) for name in attnames]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {connection.ops.quote_name(meta.db_table)} ({columns}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row([getattr(row, name) for name in attnames])


def rows_update(model, rows: list, fields: list[str]) -> None:
    """Write `fields` of many rows in one statement.

    On PostgreSQL, `UPDATE ... FROM (VALUES ...)`: bulk_update's CASE WHEN per row makes each row scan every
    branch, which costs more than the rest of a 500-event batch. Elsewhere, bulk_update.
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_update(rows, fields)
        return
    quote = connection.ops.quote_name
    meta = model._meta
    columns = [meta.pk, *(meta.get_field(name) for name in fields)]
    cast = ", ".join(f"%s::{column.db_type(connection)}" for column in columns)
    values = ", ".join([f"({cast})"] * len(rows))
    params = [column.get_db_prep_value(getattr(row, column.attname), connection) for row in rows for column in columns]
    assignments = ", ".join(f"{quote(c.column)} = v.{quote(c.column)}" for c in columns[1:])
    names = ", ".join(quote(c.column) for c in columns)
    # Identifiers come from the model's metadata, quoted; every value is a parameter.
    pk = quote(meta.pk.column)
    sql = f"UPDATE {quote(meta.db_table)} AS t SET {assignments} FROM (VALUES {values}) AS v ({names}) WHERE t.{pk} = v.{pk}"  # noqa: E501,S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
