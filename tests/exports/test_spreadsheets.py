"""What analysts see when they open the exports: one rendering per type on every path, and .xlsx read back."""

import io
from datetime import datetime
from decimal import Decimal

import openpyxl
import pytest
import time_machine
from django.db.models import F, Value
from django.utils import timezone
from openpyxl.utils.escape import unescape

from backoffice.exports import rendering, services, xlsx
from backoffice.exports.formulas import FORMULA_TRIGGERS, neutralise, restore
from backoffice.exports.models import ExportJob
from tests.exports.conftest import AWKWARD, LEDGER_COLUMNS, SERIALS, WHEN, ZONE, export_job, read_csv

pytestmark = pytest.mark.django_db


def test_job_and_download_now_write_the_same_csv_bytes_each_type_rendered_once(
    make_analyst, ledger, exports_root, settings
):
    settings.TIME_ZONE = ZONE
    user = make_analyst()

    job = export_job(user, file_format="csv")
    _, chunks = services.export_stream_start(user=user, target_key="ledger", query_string="", columns=LEDGER_COLUMNS)
    streamed = b"".join(chunks)

    written = (exports_root / job.file_name).read_bytes()
    assert written == streamed
    assert written.count(b"\r\n") == len(ledger) + 1  # every line ends with CRLF (RFC 4180)
    assert written.replace(b"\r\n", b"").count(b"\n") == 1  # the one LF left is inside a quoted reason
    header, *rows = read_csv(exports_root / job.file_name)
    assert header == ["ID", "Serial number", "Amount", "Kind", "Order number", "Reason", "Created"]
    by_id = {int(row[0]): row for row in rows}
    for entry in ledger:
        row = by_id[entry.pk]
        assert row[2] == "7"
        assert row[3] == str(entry.get_kind_display())  # the label, not the code
        assert restore(row[1]) == entry.serial_number and restore(row[4]) == entry.order_number
        assert restore(row[5]) == entry.reason
        assert row[6] == "2026-12-01 10:20:56"  # the portal's time zone, whole seconds
    assert by_id[ledger[0].pk][1] == "'20261130212715342936571109442887"
    assert by_id[ledger[1].pk][1] == "'2026113021271563425e367836439887"
    assert by_id[ledger[2].pk][1] == "B000001"
    assert by_id[ledger[0].pk][4] == "'000123"
    assert {row[3] for row in rows} == {"award", "adjustment"}


def test_orders_csv_writes_booleans_and_status_labels(make_analyst, exports_root, django_user_model):
    from orders.models import Order

    buyer = django_user_model.objects.create_user(username="buyer", password="x")
    common = {"user": buyer, "subtotal": Decimal("10.00"), "total": Decimal("10.00"), "expires_at": timezone.now()}
    Order.objects.create(number="1234567890123456789", needs_refund=True, phone="0211234567", **common)
    Order.objects.create(number="N-2", **common)

    job = export_job(
        make_analyst(),
        file_format="csv",
        target="orders",
        columns=["number", "status", "total", "needs_refund", "phone"],
    )

    header, *rows = read_csv(exports_root / job.file_name)
    assert sorted(rows) == sorted(
        [
            ["'1234567890123456789", str(Order.Status.PENDING.label), "10.00", "'0211234567", "TRUE"],
            ["N-2", str(Order.Status.PENDING.label), "10.00", "", "FALSE"],
        ]
    )


def test_xlsx_reads_back_with_types_frozen_filtered_header(make_analyst, ledger, exports_root, settings):
    settings.TIME_ZONE = ZONE
    job = export_job(make_analyst(), file_format="xlsx")
    assert job.file_name.endswith(".xlsx") and job.download_name.endswith(".xlsx")
    assert job.rows_written == len(ledger)

    streamed = openpyxl.load_workbook(exports_root / job.file_name, read_only=True)  # trusts the sheet's sizes
    assert len(list(streamed.active.iter_rows(min_row=2))) == len(ledger)
    book = openpyxl.load_workbook(exports_root / job.file_name)
    (sheet,) = book.worksheets
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:G{len(ledger) + 1}"
    header, *rows = list(sheet.iter_rows(values_only=True))
    assert header == ("ID", "Serial number", "Amount", "Kind", "Order number", "Reason", "Created")
    for cells in sheet.iter_rows(min_row=2):
        assert all(cell.data_type != "f" for cell in cells)
    by_id = {row[0]: row for row in rows}
    for entry in ledger:
        row = by_id[entry.pk]
        assert isinstance(row[0], int) and row[2] == 7
        assert row[1] == entry.serial_number  # exactly, as text
        assert row[3] == str(entry.get_kind_display())
        assert row[4] == (entry.order_number or None)
        assert unescape(row[5] or "") == entry.reason  # _xHHHH_ is read as Excel reads it
        assert row[6] == datetime(2026, 12, 1, 10, 20, 56)  # a real date-time, in the portal's zone


def test_xlsx_starts_a_new_sheet_with_the_header_when_one_is_full(make_analyst, ledger, exports_root, monkeypatch):
    monkeypatch.setattr(xlsx, "MAX_SHEET_ROWS", 3)  # the header and two rows

    job = export_job(make_analyst(), file_format="xlsx", columns=["id", "serial_number"])

    book = openpyxl.load_workbook(exports_root / job.file_name)
    sheets = book.worksheets
    assert len(sheets) == -(-len(ledger) // 2)
    seen = []
    for sheet in sheets:
        header, *rows = list(sheet.iter_rows(values_only=True))
        assert header == ("ID", "Serial number") and 1 <= len(rows) <= 2
        assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == f"A1:B{len(rows) + 1}"
        seen.extend(row[0] for row in rows)
    assert seen == sorted((entry.pk for entry in ledger), reverse=True)


def test_xlsx_download_now_streams_the_same_workbook(make_analyst, ledger, client):
    client.force_login(make_analyst())
    response = client.post(
        "/admin/exports/new/ledger/",
        {"columns": LEDGER_COLUMNS, "file_format": "xlsx", "stream": "1", "query_string": ""},
    )
    assert response.status_code == 200
    assert response["Content-Type"] == ExportJob.CONTENT_TYPES["xlsx"]
    assert ".xlsx" in response["Content-Disposition"]
    book = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    assert len(list(book.active.iter_rows())) == len(ledger) + 1


def test_sql_rendering_matches_the_python_reference(make_results, settings):
    """PostgreSQL renders in SQL, SQLite through the Python functions: both must give the same text."""
    from django_celery_results.models import TaskResult

    settings.TIME_ZONE = ZONE
    texts = [*AWKWARD, *SERIALS, "\t\t=x", "x\r\n-1", '"=1"', "_x005F_", "\x1f\x0b", "ü ✓ 😀"]
    with time_machine.travel(WHEN, tick=False):  # date_done is auto_now
        make_results(*({"result": text} for text in texts))
    query = TaskResult.objects.order_by("pk").annotate(
        xml=rendering.XmlText(F("result")),
        neutral=rendering.csv_cell("result", rendering.TEXT, TaskResult._meta.get_field("result")),
        identifier=rendering.csv_cell("result", rendering.IDENTIFIER, TaskResult._meta.get_field("result")),
        local=rendering.LocalText(F("date_done"), Value(ZONE)),
        serial=rendering.ExcelSerial(F("date_done"), Value(ZONE)),
    )
    for text, row in zip(texts, query.values("xml", "neutral", "identifier", "local", "serial"), strict=True):
        assert row["xml"] == rendering.xml_text(text)
        assert row["neutral"] == (neutralise(text) or None)
        assert row["identifier"] == (neutralise(text, is_identifier=True) or None)
        assert row["local"] == rendering.local_text(WHEN, ZONE) == "2026-12-01 10:20:56"
        assert float(row["serial"]) == pytest.approx(rendering.excel_serial(WHEN, ZONE), abs=1e-9)


def test_stock_export_button_hands_over_to_the_export_page_with_the_filters(client, make_analyst, ledger):
    from points.models import LedgerEntry

    client.force_login(make_analyst())
    changelist = client.get("/admin/points/ledgerentry/?kind__exact=award")
    assert b"/admin/points/ledgerentry/export/?kind__exact=award" in changelist.content

    response = client.get("/admin/points/ledgerentry/export/?kind__exact=award")

    assert response.status_code == 302
    assert response["Location"] == "/admin/exports/new/ledger/?kind__exact=award"
    page = client.get(response["Location"])
    awards = LedgerEntry.objects.filter(kind="award").count()
    assert page.context["count"] == awards


def test_download_now_above_the_limit_becomes_a_background_job(client, make_analyst, ledger, settings, no_enqueue):
    settings.EXPORTS_STREAM_MAX_ROWS = 2
    client.force_login(make_analyst())

    response = client.post(
        "/admin/exports/new/ledger/",
        {"columns": LEDGER_COLUMNS, "file_format": "csv", "stream": "1", "query_string": ""},
    )

    job = ExportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/admin/exports/jobs/{job.pk}/"
    assert job.mode == ExportJob.Mode.JOB and job.rows_total == len(ledger)


def test_time_left_is_measured_from_the_first_rows_not_from_the_start(make_analyst, make_results, no_enqueue):
    """A run that waited 5 s for its first row (the database sorting) then writes 96,000 rows/s: half-way,
    the time left is about half a second, not the 5 s that rows / time since the start would say."""
    from django.core.cache import cache

    make_results({})
    job = services.export_job_create(user=make_analyst(), target_key="results", query_string="", columns=["id"])
    now = 1_000_000.0
    started = timezone.now() - timezone.timedelta(seconds=5.25)
    ExportJob.objects.filter(pk=job.pk).update(status=ExportJob.Status.RUNNING, started_at=started, rows_total=100_000)
    job.refresh_from_db()

    assert services.export_job_progress(job=job, now=now)["is_preparing"] is True
    cache.set(
        services.progress_key(job.pk), {"rows": 2_000, "at": now - 0.25, "first_rows": 2_000, "first_at": now - 0.25}
    )
    early = services.export_job_progress(job=job, now=now)
    assert early["seconds_left"] is None and early["rows_written"] == 2_000  # too early to tell
    cache.set(services.progress_key(job.pk), {"rows": 50_000, "at": now, "first_rows": 2_000, "first_at": now - 0.5})

    progress = services.export_job_progress(job=job, now=now)

    assert progress["rows_per_second"] == 96_000.0
    assert progress["seconds_left"] == pytest.approx(50_000 / 96_000, abs=0.05)
    assert progress["percent"] == 50.0
    assert services.export_job_progress(job=job, now=now + 0.3)["seconds_left"] == pytest.approx(0.22, abs=0.05)


def test_neutralised_cells_of_the_fixture_are_really_risky():
    """The fixture exercises the rule: every awkward reason needs at least one apostrophe."""
    assert all(neutralise(text) != text or not any(t in text for t in FORMULA_TRIGGERS) for text in AWKWARD)
