"""Spreadsheet formula neutralising (CSV injection), in Python and as an ORM expression.

A spreadsheet runs a cell as a formula when it starts with `=`, `+`, `-`, `@`, a tab or a carriage return.
Which characters start a cell depends on the separator the person picks when opening the file (a comma, a
semicolon, a tab, and every line break), and a quote may open a field there: so not only the start of a
text gets a leading apostrophe, but every position that follows one of SEPARATORS. A spreadsheet reads an
apostrophe-led cell as text, whichever way the line was cut.

An apostrophe that already sits at such a position gets one too, so the rule is reversible:
`restore(neutralise(text)) == text` for every text. Numeric columns never pass through here, so -5 stays the
number -5. Identifiers (serial and order numbers, which may be all digits or digits-e-digits) also get the
apostrophe when they start with a digit or a point, or a spreadsheet would turn them into numbers.
https://owasp.org/www-community/attacks/CSV_Injection
"""

import re

from django.db.models import Case, CharField, F, Func, TextField, Value, When
from django.db.models.functions import Cast, Concat, Substr
from django.db.models.lookups import In

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
PREFIX = "'"
# Where a cell may start when the file is read with another separator than the one it was written with.
SEPARATORS = (",", ";", "\t", "\n", "\r", '"')
_NEEDS_PREFIX = (*FORMULA_TRIGGERS, PREFIX)
_NUMBER_STARTS = tuple("0123456789.")  # an identifier starting so could be read as a number or a date

_SEPARATOR_CLASS = '[,;\t\n\r"]'
_NEEDS_CLASS = "[=+@\t\r'-]"
_INNER = re.compile(f"(?<={_SEPARATOR_CLASS})(?={_NEEDS_CLASS})")
_NEEDS_INNER = re.compile(f"{_SEPARATOR_CLASS}{_NEEDS_CLASS}")
_INSERTED = re.compile(f"(?:^|(?<={_SEPARATOR_CLASS})){PREFIX}")


def neutralise(value: str, *, is_identifier: bool = False) -> str:
    """The cell text: an apostrophe before every position a spreadsheet could run as a formula."""
    value = _INNER.sub(PREFIX, value)
    starts = (*_NEEDS_PREFIX, *_NUMBER_STARTS) if is_identifier else _NEEDS_PREFIX
    return PREFIX + value if value.startswith(starts) else value


def restore(cell: str) -> str:
    """The original text of a neutralised cell (what a reader of our CSV does to get the data back)."""
    return _INSERTED.sub("", cell)


class _InnerNeutralised(Func):
    """The inner positions of the rule (after a separator): a regexp on PostgreSQL; on SQLite, neutralise()'s
    own regular expression, registered as an SQL function (register_sqlite_functions)."""

    output_field = TextField()

    def as_postgresql(self, compiler, connection, **extra_context):
        # Lookbehind and lookahead match between characters, so "\t\t=" gets an apostrophe before each. The
        # plain match first: most texts have no trigger after a separator, and it costs a third of the replace.
        sql, params = compiler.compile(self.source_expressions[0])
        return (
            f"CASE WHEN {sql} ~ %s THEN regexp_replace({sql}, %s, %s, 'g') ELSE {sql} END",
            (*params, _NEEDS_INNER.pattern, *params, _INNER.pattern, PREFIX, *params),
        )

    def as_sqlite(self, compiler, connection, **extra_context):
        return super().as_sql(compiler, connection, function="bo_exports_inner_neutralise", **extra_context)

    def as_sql(self, compiler, connection, **extra_context):
        raise NotImplementedError("exports neutralise text in PostgreSQL or SQLite only")


def neutralised_text(path: str, *, is_text: bool, is_identifier: bool = False):
    """ORM expression: the column as text, neutralised in the database (NULL stays NULL)."""
    text = F(path) if is_text else Cast(F(path), TextField())
    inner = _InnerNeutralised(text)
    starts = [*_NEEDS_PREFIX, *_NUMBER_STARTS] if is_identifier else list(_NEEDS_PREFIX)
    return Case(
        When(In(Substr(text, 1, 1), starts), then=Concat(Value(PREFIX), inner)),
        default=inner,
        output_field=TextField() if not is_text else CharField(),
    )


def inner_neutralise(value: str | None) -> str | None:
    """The inner positions of the rule alone (SQLite runs this as bo_exports_inner_neutralise)."""
    return None if value is None else _INNER.sub(PREFIX, value)
