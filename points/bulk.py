"""Set-based writes of the points tables, shared by the batch processing of events and the ledger's append path."""

from django.db import connection
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL


def rows_insert(model, rows: list, attnames: tuple[str, ...]) -> None:
    """Insert many rows whose ids nobody reads back from this call.

    On PostgreSQL, COPY: the rows stream as text, without an INSERT with thousands of placeholders for the
    driver to quote one by one (which cost more than the database's own work in a 500-event batch). The
    database checks constraints and unique keys on COPY exactly as on INSERT. Elsewhere, bulk_create.
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create(rows)  # sets the instances' ids, which the callers read
        return
    values_copy(model, attnames, [[getattr(row, name) for name in attnames] for row in rows])


def values_copy(model, attnames: tuple[str, ...], values: list) -> None:
    """rows_insert for rows given as value tuples in `attnames` order, written exactly as given (an
    auto_now_add field keeps the value in the tuple): no model instance per row. COPY on PostgreSQL, one
    executemany INSERT elsewhere."""
    if not values:
        return
    meta = model._meta
    quote = connection.ops.quote_name
    fields = [next(f for f in meta.concrete_fields if f.attname == name) for name in attnames]
    columns = ", ".join(quote(field.column) for field in fields)
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            placeholders = ", ".join(["%s"] * len(fields))
            cursor.executemany(
                f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders})",  # noqa: S608 (metadata)
                [[f.get_db_prep_save(v, connection) for f, v in zip(fields, row, strict=True)] for row in values],
            )
            return
        with cursor.cursor.copy(f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN") as copy:
            for row in values:
                copy.write_row(row)


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


def any_of(model, attname: str, values) -> Q | RawSQL:
    """A filter on `attname IN values` for a set-based statement on a batch's rows.

    On PostgreSQL, `column = ANY(%s)` with the values as one array parameter: Django and the driver quote a
    thousand-placeholder `IN (...)` one value at a time, which cost more than the database's own work on a
    batch. Elsewhere, the plain `__in` lookup. Use it on a query of `model`'s own table only (the column is
    named by its table, which a join or a subquery could alias).
    """
    values = list(values)
    if connection.vendor != "postgresql":
        return Q(**{f"{attname}__in": values})
    field = next(f for f in model._meta.concrete_fields if f.attname == attname or (attname == "pk" and f.primary_key))
    column = f"{connection.ops.quote_name(model._meta.db_table)}.{connection.ops.quote_name(field.column)}"
    return RawSQL(f"{column} = ANY(%s)", (values,), output_field=BooleanField())  # noqa: S611 (identifiers from metadata)
