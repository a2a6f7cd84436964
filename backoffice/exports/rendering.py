"""How each kind of column is written: one rendering per type for every export path and format.

The background job, the streamed download and the changelists' Export button all write the rows query built
here, so a cell reads the same whichever was used. The database renders every cell (PostgreSQL in SQL, so
that COPY streams it as it is; SQLite through the Python functions registered by
register_sqlite_functions, which are the reference the SQL is tested against):

| kind       | CSV                                                  | xlsx                                  |
| ---------- | ---------------------------------------------------- | ------------------------------------- |
| number     | as the database writes it (`-5`, `10.00`)            | a number                              |
| text       | formula-neutralised (formulas.py)                    | a string, exactly as stored           |
| identifier | as text, plus an apostrophe when it starts as a number would | a string, exactly as stored   |
| datetime   | `YYYY-MM-DD HH:MM:SS` in the portal's TIME_ZONE      | a date-time in TIME_ZONE, whole seconds |
| boolean    | `TRUE` / `FALSE`                                     | a boolean                             |
| choice     | its label (in the job's language), neutralised       | its label, a string                   |

An empty text is written as an empty cell, as NULL is.
"""

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from django.db.backends.utils import typecast_timestamp
from django.db.models import Case, DateTimeField, F, Func, Q, TextField, Value, When, fields
from django.db.models.functions import Cast, Coalesce, NullIf
from django.utils import timezone

from backoffice.exports.formulas import inner_neutralise, neutralise, neutralised_text

NUMBER = "number"
TEXT = "text"
IDENTIFIER = "identifier"
DATETIME = "datetime"
BOOLEAN = "boolean"
CHOICE = "choice"
KINDS = (NUMBER, TEXT, IDENTIFIER, DATETIME, BOOLEAN, CHOICE)
DATE_STYLE = 1  # the cellXfs index of the date-time format in xlsx.py's styles
HEADER_STYLE = 2  # and of the bold header

_NUMERIC_FIELDS = (fields.IntegerField, fields.DecimalField, fields.FloatField, fields.AutoField)
_EXCEL_EPOCH = datetime(1899, 12, 30)  # noqa: DTZ001 - day 0 of Excel's 1900 date system, a naive wall time
_SECONDS_PER_DAY = 86_400
# XML 1.0 cannot hold these; xlsx writes them as _xHHHH_ (as Excel and XlsxWriter do), and a literal
# _xHHHH_ in the text is itself escaped, so a reader gets the text back exactly.
_XML_CONTROL = [chr(code) for code in (*range(0x01, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20))]
_XML_NEEDS_ESCAPE = "[\x01-\x08\x0b\x0c\x0e-\x1f]|_x[0-9A-Fa-f]{4}_"


def kind_of(model_field, declared: str | None = None) -> str:
    """The declared kind, else the one the model field implies (a foreign key is its target's number)."""
    if declared:
        return declared
    if isinstance(model_field, fields.BooleanField):
        return BOOLEAN
    if isinstance(model_field, fields.DateTimeField):
        return DATETIME
    if getattr(model_field, "choices", None):
        return CHOICE
    if isinstance(model_field, _NUMERIC_FIELDS):
        return NUMBER
    return TEXT


# --- the Python reference (SQLite runs it as SQL functions; PostgreSQL's SQL is tested against it) ---------


def _utc(value) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = typecast_timestamp(value)
    return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)


def local_text(value, zone_name: str) -> str | None:
    moment = _utc(value)
    return None if moment is None else moment.astimezone(ZoneInfo(zone_name)).strftime("%Y-%m-%d %H:%M:%S")


def excel_serial(value, zone_name: str) -> float | None:
    """Days since Excel's epoch of the local wall time, whole seconds (what a date cell holds)."""
    moment = _utc(value)
    if moment is None:
        return None
    wall = moment.astimezone(ZoneInfo(zone_name)).replace(tzinfo=None, microsecond=0)
    return (wall - _EXCEL_EPOCH).total_seconds() / _SECONDS_PER_DAY


def xml_text(value: str | None) -> str | None:
    """Text for an xlsx inline string: XML-escaped, line ends and backslashes as character references (so
    PostgreSQL's COPY passes the row through untouched), control characters as _xHHHH_."""
    if value is None:
        return None
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    value = value.replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;").replace("\\", "&#92;")
    if "_x" in value or any(char in value for char in _XML_CONTROL):
        value = re.sub(r"_(x[0-9A-Fa-f]{4}_)", r"_x005F_\1", value)
        for char in _XML_CONTROL:
            value = value.replace(char, f"_x{ord(char):04X}_")
    return value


def register_sqlite_functions(sender=None, connection=None, **kwargs) -> None:
    """connection_created receiver: the Python reference as SQL functions on SQLite."""
    if connection is None or connection.vendor != "sqlite":
        return
    create = connection.connection.create_function
    create("bo_exports_inner_neutralise", 1, inner_neutralise, deterministic=True)
    create("bo_exports_local_text", 2, local_text, deterministic=True)
    create("bo_exports_excel_serial", 2, lambda v, z: _float_text(excel_serial(v, z)), deterministic=True)
    create("bo_exports_xml_text", 1, xml_text, deterministic=True)


def _float_text(value: float | None) -> str | None:
    return None if value is None else repr(value)


# --- SQL ---------------------------------------------------------------------------------------------------


class _PerVendor(Func):
    output_field = TextField()
    sqlite_function = ""

    def as_sql(self, compiler, connection, **extra_context):
        raise NotImplementedError("exports render cells in PostgreSQL or SQLite only")

    def as_sqlite(self, compiler, connection, **extra_context):
        return Func.as_sql(self, compiler, connection, function=self.sqlite_function, **extra_context)


class LocalText(_PerVendor):
    """A timestamp as `YYYY-MM-DD HH:MM:SS` in a time zone (the zone name is the second argument)."""

    sqlite_function = "bo_exports_local_text"

    def as_postgresql(self, compiler, connection, **extra_context):
        value, zone = self.source_expressions
        expression = Func(
            Func(value, zone, template="(%(expressions)s)", arg_joiner=" AT TIME ZONE ", output_field=DateTimeField()),
            Value("YYYY-MM-DD HH24:MI:SS"),
            function="to_char",
            output_field=TextField(),
        )
        return compiler.compile(expression)


class ExcelSerial(_PerVendor):
    """A timestamp as Excel's day number of its wall time in a time zone, whole seconds, as text."""

    sqlite_function = "bo_exports_excel_serial"

    def as_postgresql(self, compiler, connection, **extra_context):
        value, zone = self.source_expressions
        sql, params = compiler.compile(value)
        zone_sql, zone_params = compiler.compile(zone)
        return (
            f"((EXTRACT(EPOCH FROM date_trunc('second', {sql} AT TIME ZONE {zone_sql})) / {_SECONDS_PER_DAY}"
            f" + 25569)::float8)::text",
            (*params, *zone_params),
        )


class XmlText(_PerVendor):
    sqlite_function = "bo_exports_xml_text"

    def as_postgresql(self, compiler, connection, **extra_context):
        (value,) = self.source_expressions
        sql, params = compiler.compile(value)
        plain = sql
        for old, new in (
            ("&", "&amp;"),
            ("<", "&lt;"),
            (">", "&gt;"),
            ("\n", "&#10;"),
            ("\r", "&#13;"),
            ("\t", "&#9;"),
            ("\\", "&#92;"),
        ):
            plain = f"replace({plain}, {_literal(old)}, {_literal(new)})"
        rare = f"regexp_replace({plain}, '_(x[0-9A-Fa-f]{{4}}_)', '_x005F_\\1', 'g')"
        for char in _XML_CONTROL:
            rare = f"replace({rare}, {_literal(char)}, '_x{ord(char):04X}_')"
        return (
            f"CASE WHEN {sql} ~ {_literal(_XML_NEEDS_ESCAPE)} THEN {rare} ELSE {plain} END",
            (*params, *params, *params),
        )


def _literal(text: str) -> str:
    """A PostgreSQL literal for a constant of ours (never user input): E'' with escapes where needed."""
    escaped = "".join(
        "''" if char == "'" else "\\\\" if char == "\\" else f"\\x{ord(char):02x}" if ord(char) < 0x20 else char
        for char in text
    )
    return f"E'{escaped}'"


class Cat(Func):
    """`a || b || c`: NULL when any part is NULL (Django's Concat treats NULL as empty)."""

    template = "(%(expressions)s)"
    arg_joiner = " || "
    output_field = TextField()


# --- one column, one format ----------------------------------------------------------------------------------


def _zone():
    return Value(timezone.get_default_timezone_name())


def _choice_labels(model_field) -> list[tuple[str, str]]:
    return [(value, str(label)) for value, label in model_field.flatchoices]


def csv_cell(path: str, kind: str, model_field):
    """The CSV cell of a column: an expression (or the plain path for numbers)."""
    if kind == NUMBER:
        return F(path)
    if kind == DATETIME:
        return LocalText(F(path), _zone())
    if kind == BOOLEAN:
        return Case(
            When(Q(**{path: True}), then=Value("TRUE")),
            When(Q(**{path: False}), then=Value("FALSE")),
            default=Value(None),
            output_field=TextField(),
        )
    is_text = model_field.get_internal_type() in ("CharField", "TextField", "SlugField")
    text = NullIf(neutralised_text(path, is_text=is_text, is_identifier=kind == IDENTIFIER), Value(""))
    if kind == CHOICE:
        labelled = [
            When(Q(**{path: value}), then=Value(neutralise(label))) for value, label in _choice_labels(model_field)
        ]
        return Case(*labelled, default=text, output_field=TextField())
    return text


_EMPTY = Value("<c/>")


def _string_cell(text):
    return Cat(Value('<c t="inlineStr"><is><t xml:space="preserve">'), XmlText(text), Value("</t></is></c>"))


def xlsx_cell(path: str, kind: str, model_field):
    """The xlsx cell of a column, as SpreadsheetML text (`<c>...</c>`); an empty cell keeps its place."""
    if kind == NUMBER:
        return Coalesce(Cat(Value("<c><v>"), Cast(F(path), TextField()), Value("</v></c>")), _EMPTY)
    if kind == DATETIME:
        return Coalesce(
            Cat(Value(f'<c s="{DATE_STYLE}"><v>'), ExcelSerial(F(path), _zone()), Value("</v></c>")), _EMPTY
        )
    if kind == BOOLEAN:
        return Case(
            When(Q(**{path: True}), then=Value('<c t="b"><v>1</v></c>')),
            When(Q(**{path: False}), then=Value('<c t="b"><v>0</v></c>')),
            default=_EMPTY,
            output_field=TextField(),
        )
    is_text = model_field.get_internal_type() in ("CharField", "TextField", "SlugField")
    text = F(path) if is_text else Cast(F(path), TextField())
    cell = Coalesce(_string_cell(NullIf(text, Value(""))), _EMPTY)
    if kind == CHOICE:
        labelled = [
            When(
                Q(**{path: value}),
                then=Value(f'<c t="inlineStr"><is><t xml:space="preserve">{xml_text(label)}</t></is></c>'),
            )
            for value, label in _choice_labels(model_field)
        ]
        return Case(*labelled, default=cell, output_field=TextField())
    return cell
