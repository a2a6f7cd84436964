"""The exports opened the way a spreadsheet opens them: LibreOffice Calc, headless, formulas evaluated.

Each CSV is opened with a comma, a semicolon and a tab as the separator (what a comma locale, a semicolon
locale and a paste do); LibreOffice's own .xlsx of what it read is then read back with openpyxl, where a
formula cell shows as data_type "f". Debian's libreoffice-calc-nogui is installed by the set-up when
missing (as `make libreoffice` does).
"""

import os
import shutil
import subprocess
from datetime import datetime

import openpyxl
import pytest
from openpyxl.utils.escape import unescape

from backoffice.exports.formulas import restore
from tests.exports.conftest import LEDGER_COLUMNS, SERIALS, ZONE, export_job

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

SEPARATORS = {"comma": 44, "semicolon": 59, "tab": 9}
CONVERT_TIMEOUT_SECONDS = 300  # a cold start on a busy 2-core machine takes tens of seconds


@pytest.fixture(scope="session")
def soffice() -> str:
    found = shutil.which("soffice")
    if not found and os.geteuid() == 0:
        apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600"]  # others may hold the lock for a while
        environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for step in (["update", "-qq"], ["install", "-y", "-qq", "--no-install-recommends", "libreoffice-calc-nogui"]):
            subprocess.run([*apt, *step], check=True, env=environment, stdout=subprocess.DEVNULL)
        found = shutil.which("soffice")
    if not found:
        pytest.fail("these tests need LibreOffice Calc: apt-get install libreoffice-calc-nogui (or make libreoffice)")
    return found


def _open_in_calc(soffice, tmp_path, source, *, infilter: str | None = None) -> openpyxl.Workbook:
    """What Calc reads from source, saved by Calc as .xlsx and loaded with openpyxl (formulas kept)."""
    out = tmp_path / f"calc-{source.stem}"
    command = [
        soffice,
        f"-env:UserInstallation=file://{tmp_path}/profile",  # its own profile: tests may run side by side
        "--headless",
        "--norestore",
        "--convert-to",
        "xlsx",
        "--outdir",
        str(out),
        str(source),
    ]
    if infilter:
        command[4:4] = [f"--infilter={infilter}"]
    subprocess.run(command, check=True, timeout=CONVERT_TIMEOUT_SECONDS, capture_output=True)
    return openpyxl.load_workbook(out / f"{source.stem}.xlsx")


def _csv_filter(separator: int) -> str:
    # Tokens: separator, text delimiter ", UTF-8, from line 1, no column formats, language, quoted fields not
    # forced to text, detect special numbers (dates), -, -, keep spaces, -, evaluate formulas.
    return f"CSV:{separator},34,76,1,,0,false,true,false,false,false,-1,true"


def _comparable(text: str) -> bool:
    """Whether text survives Calc's own .xlsx unchanged: Calc writes a control character as _xHHHH_ but a
    literal _xHHHH_ unescaped, so such texts are compared in test_spreadsheets.py (our file, openpyxl)."""
    return "_x" not in text and not any(ord(char) < 0x20 and char not in "\t\n\r" for char in text)


def _cells(book):
    return [cell for sheet in book.worksheets for row in sheet.iter_rows() for cell in row]


@pytest.mark.parametrize("separator", SEPARATORS)
def test_calc_finds_no_formula_whatever_the_separator(soffice, tmp_path, make_analyst, ledger, exports_root, separator):
    job = export_job(make_analyst(), file_format="csv")
    source = tmp_path / f"ledger-{separator}.csv"
    shutil.copy(exports_root / job.file_name, source)

    book = _open_in_calc(soffice, tmp_path, source, infilter=_csv_filter(SEPARATORS[separator]))

    cells = _cells(book)
    assert cells and [cell.coordinate for cell in cells if cell.data_type == "f"] == []
    assert not [c.value for c in cells if isinstance(c.value, str) and c.value.startswith(("=", "+", "-", "@"))]


def test_calc_reads_the_comma_csv_with_identifiers_as_text_and_numbers_as_numbers(
    soffice, tmp_path, make_analyst, ledger, exports_root, settings
):
    settings.TIME_ZONE = ZONE
    job = export_job(make_analyst(), file_format="csv")
    source = tmp_path / "ledger.csv"
    shutil.copy(exports_root / job.file_name, source)

    book = _open_in_calc(soffice, tmp_path, source, infilter=_csv_filter(SEPARATORS["comma"]))

    header, *rows = list(book.active.iter_rows(values_only=True))
    assert list(header) == ["ID", "Serial number", "Amount", "Kind", "Order number", "Reason", "Created"]
    by_id = {row[0]: row for row in rows}
    assert len(by_id) == len(ledger)
    for entry in ledger:
        row = by_id[entry.pk]  # the id is a number again
        assert isinstance(row[1], str) and restore(row[1]) == entry.serial_number
        assert row[2] == 7
        assert restore(row[4] or "") == entry.order_number
        if _comparable(entry.reason):
            assert restore(row[5] or "") == entry.reason
        assert row[6] == datetime(2026, 12, 1, 10, 20, 56)  # a date Calc recognised, in the portal's zone
    assert {restore(by_id[entry.pk][1]) for entry in ledger} >= set(SERIALS)


def test_calc_reads_the_xlsx_with_types_and_no_formula(soffice, tmp_path, make_analyst, ledger, exports_root, settings):
    settings.TIME_ZONE = ZONE
    job = export_job(make_analyst(), file_format="xlsx")
    source = tmp_path / "ledger-export.xlsx"
    shutil.copy(exports_root / job.file_name, source)

    book = _open_in_calc(soffice, tmp_path, source)

    assert [cell.coordinate for cell in _cells(book) if cell.data_type == "f"] == []
    sheet = book.active  # (headless Calc keeps no view settings, so the frozen header is checked with openpyxl)
    header, *rows = list(sheet.iter_rows(values_only=True))
    assert header[0] == "ID"
    by_id = {row[0]: row for row in rows}
    for entry in ledger:
        row = by_id[entry.pk]
        assert row[1] == entry.serial_number and row[2] == 7
        if _comparable(entry.reason):
            assert unescape(row[5] or "") == entry.reason
        assert row[6] == datetime(2026, 12, 1, 10, 20, 56)
    assert len(LEDGER_COLUMNS) == len(header)
