import re

from hypothesis import given
from hypothesis import strategies as st

from backoffice.exports.formulas import FORMULA_TRIGGERS, PREFIX, SEPARATORS, neutralise, restore

TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
RISKY = st.builds(lambda start, rest: start + rest, st.sampled_from([*FORMULA_TRIGGERS, PREFIX]), TEXT)
# Text made of the characters that matter here, so separators and triggers meet often.
DENSE = st.text(st.sampled_from([*FORMULA_TRIGGERS, *SEPARATORS, PREFIX, "a", "1", " "]), max_size=30)


def _pieces(cell: str) -> list[str]:
    """Every piece a spreadsheet could take for a cell, whichever separator or line break cuts it."""
    return re.split('[,;\t\n\r"]', cell)


@given(st.one_of(TEXT, RISKY, DENSE))
def test_no_piece_of_a_neutralised_text_starts_with_a_trigger_and_it_restores_exactly(value):
    cell = neutralise(value)

    assert not cell.startswith(FORMULA_TRIGGERS)
    assert not any(piece.startswith(FORMULA_TRIGGERS) for piece in _pieces(cell))
    assert restore(cell) == value


@given(st.one_of(TEXT, DENSE, st.from_regex(r"[0-9.][0-9eE.+-]{0,30}", fullmatch=True)))
def test_identifiers_never_start_as_a_number_and_restore_exactly(value):
    cell = neutralise(value, is_identifier=True)

    assert not cell.startswith(tuple("0123456789.+-=@"))
    assert restore(cell) == value


def test_known_payloads():
    assert neutralise('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert neutralise("+1") == "'+1"
    assert neutralise("-2+3") == "'-2+3"
    assert neutralise("@SUM(A1)") == "'@SUM(A1)"
    assert neutralise("\t=1") == "'\t'=1"
    assert neutralise("\r=1") == "'\r'=1"
    assert neutralise("'quoted") == "''quoted"
    assert neutralise("plain = text") == "plain = text"
    assert neutralise("") == ""
    # What a semicolon locale or a paste as tab-separated values would cut into a live formula:
    assert neutralise("see note\n=1+1;") == "see note\n'=1+1;"
    assert neutralise("plain\t=7*6\tend") == "plain\t'=7*6\tend"
    assert neutralise("a;-1,+2") == "a;'-1,'+2"
    assert neutralise('say "=1"') == 'say "\'=1"'
    assert neutralise("x;'y") == "x;''y"


def test_identifiers_that_a_spreadsheet_would_read_as_numbers_get_the_apostrophe():
    assert neutralise("20261130212715342936571109442887", is_identifier=True) == "'20261130212715342936571109442887"
    assert neutralise("2026113021271563425e367836439887", is_identifier=True) == "'2026113021271563425e367836439887"
    assert neutralise(".5", is_identifier=True) == "'.5"
    assert neutralise("B000001", is_identifier=True) == "B000001"
    assert neutralise("O-17", is_identifier=True) == "O-17"
    assert neutralise("20261130212715342936571109442887") == "20261130212715342936571109442887"  # plain text
