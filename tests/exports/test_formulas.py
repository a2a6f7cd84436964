from hypothesis import given
from hypothesis import strategies as st

from backoffice.exports.formulas import FORMULA_TRIGGERS, PREFIX, neutralise, restore

TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
RISKY = st.builds(lambda start, rest: start + rest, st.sampled_from([*FORMULA_TRIGGERS, PREFIX]), TEXT)


@given(st.one_of(TEXT, RISKY))
def test_neutralised_text_never_starts_with_a_trigger_and_restores_exactly(value):
    cell = neutralise(value)

    assert not cell.startswith(FORMULA_TRIGGERS)
    assert restore(cell) == value


def test_known_payloads():
    assert neutralise('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert neutralise("+1") == "'+1"
    assert neutralise("-2+3") == "'-2+3"
    assert neutralise("@SUM(A1)") == "'@SUM(A1)"
    assert neutralise("\t=1") == "'\t=1"
    assert neutralise("\r=1") == "'\r=1"
    assert neutralise("'quoted") == "''quoted"
    assert neutralise("plain = text") == "plain = text"
    assert neutralise("") == ""
