"""Streaming CSV writers: memory stays flat whatever the row count.

PostgreSQL: `COPY (<the rows query>) TO STDOUT WITH (FORMAT csv)` through psycopg, written to the file as
the server sends it (libpq hands over one row per read, so the row count is exact). Other databases: a
server-side iterator in chunks through csv.writer. Neutralising is already done by the rows query
(selectors.export_rows, which renders every cell), so both paths write the same bytes: lines end with CRLF
(RFC 4180) on both, COPY's LF being rewritten as the rows go by.
"""

import codecs
import csv
import io
from collections.abc import Callable, Iterator
from typing import BinaryIO

from django.db import connections, transaction
from django.db.models import QuerySet

PROGRESS_EVERY_ROWS = 2_000  # how often the progress callback runs: cheap, and fine-grained enough for a bar
ITERATOR_CHUNK_SIZE = 2_000  # rows per fetch on the iterator path
# Python's csv (3.11) quotes a field only for the CR/LF characters of its own line terminator, so a lone
# "\r" inside a cell would go out unquoted with "\n": the iterator paths end lines with "\r\n" (RFC 4180).
LINE_TERMINATOR = "\r\n"
CRLF = LINE_TERMINATOR.encode()

ProgressCallback = Callable[[int], None]  # rows written so far; raises to stop the export


def _csv_line(values: list[str], terminator: str) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=terminator).writerow(values)
    return buffer.getvalue().encode()


def write_csv(
    *,
    rows: QuerySet,
    headers: list[str],
    out: BinaryIO,
    include_bom: bool = False,
    on_progress: ProgressCallback | None = None,
) -> int:
    """Write the header and every row of `rows` (a values_list queryset) to `out`. Returns rows written."""
    if include_bom:
        out.write(codecs.BOM_UTF8)
    progress = on_progress or (lambda written: None)
    out.write(_csv_line(headers, LINE_TERMINATOR))
    if connections[rows.db].vendor == "postgresql":
        return _copy_postgresql(rows=rows, out=out, progress=progress)
    return _write_iterator(rows=rows, out=out, progress=progress)


def _copy_postgresql(*, rows: QuerySet, out: BinaryIO, progress: ProgressCallback) -> int:
    connection = connections[rows.db]
    sql, params = rows.query.get_compiler(using=rows.db).as_sql()
    statement = f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)"  # noqa: S608 - compiled by the ORM, values bound
    written = 0
    write = out.write
    # A transaction gives one snapshot; when the progress callback raises (a cancel), leaving the block
    # cancels the COPY on the server and rolls back, so the connection stays usable.
    with (
        transaction.atomic(using=rows.db),
        connection.cursor() as cursor,
        cursor.cursor.copy(statement, tuple(params)) as copy,
    ):
        lines = []
        for data in copy:  # one row per read, ending with COPY's "\n" (one inside a quoted cell stays)
            lines.append(data[:-1])
            written += 1
            if written % PROGRESS_EVERY_ROWS == 0:
                lines.append(b"")
                write(CRLF.join(lines))
                lines.clear()
                progress(written)
        if lines:
            lines.append(b"")
            write(CRLF.join(lines))
    progress(written)
    return written


def _write_iterator(*, rows: QuerySet, out: BinaryIO, progress: ProgressCallback) -> int:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text, lineterminator=LINE_TERMINATOR)
    written = 0
    try:
        for row in rows.iterator(chunk_size=ITERATOR_CHUNK_SIZE):
            writer.writerow(row)
            written += 1
            if written % PROGRESS_EVERY_ROWS == 0:
                progress(written)
        progress(written)
    finally:
        text.detach()  # hand `out` back to the caller open
    return written


class _Echo:
    """A file-like whose write() returns the line, so csv.writer can feed a generator."""

    def write(self, value: str) -> str:
        return value


def iter_csv(
    *, rows: QuerySet, headers: list[str], include_bom: bool = False, stats: dict | None = None
) -> Iterator[bytes]:
    """The CSV as a stream of byte chunks, for StreamingHttpResponse (a server-side iterator on any DB).

    `stats["rows"]` counts the rows yielded so far."""
    stats = {} if stats is None else stats
    stats["rows"] = 0
    writer = csv.writer(_Echo(), lineterminator=LINE_TERMINATOR)
    head = writer.writerow(headers).encode()
    yield (codecs.BOM_UTF8 + head) if include_bom else head
    batch: list[str] = []
    for row in rows.iterator(chunk_size=ITERATOR_CHUNK_SIZE):
        batch.append(writer.writerow(row))
        if len(batch) >= ITERATOR_CHUNK_SIZE:
            stats["rows"] += len(batch)
            yield "".join(batch).encode()
            batch.clear()
    if batch:
        stats["rows"] += len(batch)
        yield "".join(batch).encode()
