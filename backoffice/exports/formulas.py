"""Spreadsheet formula neutralising (CSV injection), in Python and as an ORM expression.

A cell a spreadsheet would run as a formula (leading `=`, `+`, `-`, `@`, tab or carriage return) gets a
leading apostrophe, which spreadsheets read as "this is text". A cell that already starts with an
apostrophe gets one too, so the rule is reversible: `restore(neutralise(text)) == text` for every text.
Numeric columns never pass through here, so -5 stays the number -5.
https://owasp.org/www-community/attacks/CSV_Injection
"""

from django.db.models import Case, CharField, F, TextField, Value, When
from django.db.models.functions import Cast, Concat, Substr
from django.db.models.lookups import In

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
PREFIX = "'"
_NEEDS_PREFIX = (*FORMULA_TRIGGERS, PREFIX)


def neutralise(value: str) -> str:
    return PREFIX + value if value.startswith(_NEEDS_PREFIX) else value


def restore(cell: str) -> str:
    """The original text of a neutralised cell (what a reader of our CSV does to get the data back)."""
    return cell[1:] if cell.startswith(PREFIX) else cell


def neutralised_text(path: str, *, is_text: bool):
    """ORM expression: the column as text, neutralised in the database (NULL stays NULL)."""
    text = F(path) if is_text else Cast(F(path), TextField())
    return Case(
        When(In(Substr(text, 1, 1), list(_NEEDS_PREFIX)), then=Concat(Value(PREFIX), text)),
        default=text,
        output_field=TextField() if not is_text else CharField(),
    )
