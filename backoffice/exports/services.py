"""State changes for exports: create, run, cancel, expire, notify and record downloads of export jobs.

Progress and the cancel flag travel through the cache (Redis) while a job runs, because on PostgreSQL the
job's connection is busy streaming COPY; the database row is the truth at every state change, each made
by a conditional UPDATE so that a cancel and a finishing run can never both win.
"""

import logging
import secrets
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.admin.models import ADDITION, CHANGE
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop, ngettext

from backoffice.auditing import audit_record
from backoffice.exports import writers, xlsx
from backoffice.exports.models import ExportJob
from backoffice.exports.registry import ExportTarget, get_target
from backoffice.exports.selectors import export_rows, export_selection
from backoffice.exports.tasks import export_job_notify_ready_task, export_job_run_task
from backoffice.publishing import Publication, task_publish, task_publish_on_commit

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL_SECONDS = 0.25  # how often a running job publishes its row count and looks for a cancel
MIN_RATE_SECONDS = 0.5  # a time left from less than this of rows is noise: none is shown until then
CACHE_TTL_SECONDS = 24 * 3600  # progress keys outlive any job
ERROR_MAX_LENGTH = 2_000
# A partial file untouched this long belongs to a run that died (a killed worker; the redelivered run writes a
# new one): a live run touches its file with every chunk.
STALE_PART_SECONDS = 3600
REQUEUE_BATCH_SIZE = 100  # one sweep stays short; the next one (a minute later) takes the rest


class ExportCancelled(Exception):
    """Raised inside a running export when its job was cancelled; the partial file is removed."""


class TooManyRowsToStream(ValidationError):
    """A download now of more rows than EXPORTS_STREAM_MAX_ROWS: it belongs in a background job."""


def progress_key(job_id: int) -> str:
    return f"exports:job:{job_id}:progress"


def cancel_key(job_id: int) -> str:
    return f"exports:job:{job_id}:cancel"


def exports_root() -> Path:
    root = Path(settings.EXPORTS_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    return root


def _log(*, user, job: ExportJob, flag: int, message: str, **options) -> None:
    audit_record(actor=user, objects=[job], action=flag, message=message, **options)


START_MESSAGES = {  # (singular, plural), stored untranslated in the audit log
    False: (
        gettext_noop("Started export of %(data)s: %(rows)d row, filters: %(filters)s"),
        gettext_noop("Started export of %(data)s: %(rows)d rows, filters: %(filters)s"),
    ),
    True: (
        gettext_noop("Streamed export of %(data)s: %(rows)d row, filters: %(filters)s"),
        gettext_noop("Streamed export of %(data)s: %(rows)d rows, filters: %(filters)s"),
    ),
}


def _log_start(*, user, job: ExportJob, target: ExportTarget, rows: int, streamed: bool) -> None:
    singular, plural = START_MESSAGES[streamed]
    _log(
        user=user,
        job=job,
        flag=ADDITION,
        message=singular,
        plural=plural,
        count=rows,
        params={"data": target.label, "rows": rows, "filters": job.query_string or gettext_lazy("none")},
    )


def _checked_target(*, user, target_key: str) -> ExportTarget:
    try:
        target = get_target(target_key)
    except KeyError:
        raise ValidationError(_("Unknown export: %(key)s.") % {"key": target_key}) from None
    if not user.has_perm(target.permission):
        raise PermissionDenied(_("You may not export %(data)s.") % {"data": target.label})
    return target


def _checked_columns(*, target: ExportTarget, columns: list[str]) -> list[str]:
    known = [column.path for column in target.columns]
    if not columns:
        raise ValidationError(_("Choose at least one column."))
    unknown = [path for path in columns if path not in known]
    if unknown:
        raise ValidationError(_("Unknown columns: %(columns)s.") % {"columns": ", ".join(unknown)})
    return [path for path in known if path in columns]  # the registry's order, each column once


def _checked_format(file_format: str) -> str:
    if file_format not in ExportJob.Format.values:
        raise ValidationError(_("Unknown format: %(format)s.") % {"format": file_format})
    return file_format


def export_job_create(
    *,
    user,
    target_key: str,
    query_string: str,
    columns: list[str],
    include_bom: bool = False,
    notify_by_email: bool = False,
    language: str | None = None,
    link_for: Callable[[int], str] | None = None,
    file_format: str = ExportJob.Format.CSV,
) -> ExportJob:
    """Validate the request, record the job (and the audit log entry), and enqueue it after commit."""
    target = _checked_target(user=user, target_key=target_key)
    columns = _checked_columns(target=target, columns=columns)
    file_format = _checked_format(file_format)
    selection = export_selection(target=target, user=user, query_string=query_string)
    with transaction.atomic():
        job = ExportJob.objects.create(
            target=target.key,
            file_format=file_format,
            columns=columns,
            query_string=query_string,
            include_bom=include_bom,
            notify_by_email=notify_by_email and bool(user.email),
            language=language or translation.get_language() or settings.LANGUAGE_CODE,
            rows_total=selection.count,
            created_by=user,
            task_id=secrets.token_hex(16),
        )
        if link_for:  # the absolute job page URL for the email, known once the job has its id
            job.link = link_for(job.pk)
            job.save(update_fields=["link"])
        _log_start(user=user, job=job, target=target, rows=selection.count, streamed=False)
        _job_publish(job_id=job.pk, task_id=job.task_id)
    return job


def _job_publish(*, job_id: int, task_id: str) -> Publication:
    """Publish the job's run after the commit. When the broker does not take it, the job stays queued with
    no task id: the mark `export_jobs_requeue` (on the beat schedule) looks for."""

    def mark_unsent() -> None:
        ExportJob.objects.filter(pk=job_id, status=ExportJob.Status.QUEUED, task_id=task_id).update(task_id="")

    return task_publish_on_commit(export_job_run_task, args=[job_id], task_id=task_id, on_failure=mark_unsent)


def export_jobs_requeue() -> int:
    """Publish again the queued jobs whose run never reached the broker. Returns the jobs given a new run
    (one whose publish fails again is marked again, for the next sweep)."""
    unsent = ExportJob.objects.filter(status=ExportJob.Status.QUEUED, mode=ExportJob.Mode.JOB, task_id="")
    requeued = 0
    for job_id in list(unsent.order_by("pk").values_list("pk", flat=True)[:REQUEUE_BATCH_SIZE]):
        task_id = secrets.token_hex(16)
        with transaction.atomic():
            # Conditional: a cancel, or another sweep, that came first wins.
            claimed = ExportJob.objects.filter(pk=job_id, status=ExportJob.Status.QUEUED, task_id="").update(
                task_id=task_id
            )
            if claimed:
                _job_publish(job_id=job_id, task_id=task_id)
        requeued += claimed
    return requeued


def _progress_publisher(job_id: int, *, clock: Callable[[], float] = time.time):
    """The callback a running export calls: publishes the count, stops on cancel, honours the rate cap.

    What it publishes is a sample (rows, when) beside the first one taken once rows flow: a run spends its
    first part waiting for the database (planning, sorting) before the first row, so the rate, and the time
    left from it, are measured from the first rows on, never from the start of the run."""
    max_rate = settings.EXPORTS_MAX_ROWS_PER_SECOND
    started = time.monotonic()
    last_published = 0.0
    first: tuple[int, float] | None = None

    def publish(written: int) -> None:
        nonlocal last_published, first
        now = time.monotonic()
        if max_rate:
            ahead = written / max_rate - (now - started)
            if ahead > 0:
                time.sleep(ahead)
                now = time.monotonic()
        if first is None and written:
            first = (written, clock())
        elif now - last_published < PROGRESS_INTERVAL_SECONDS:
            return
        last_published = now
        sample = {"rows": written, "at": clock(), "first_rows": first[0], "first_at": first[1]} if first else None
        try:
            if sample:
                cache.set(progress_key(job_id), sample, CACHE_TTL_SECONDS)
            cancelled = cache.get(cancel_key(job_id))
        except Exception:  # noqa: BLE001 - progress is best-effort; the final UPDATE still decides
            logger.warning("export job %s: cache unavailable for progress", job_id, exc_info=True)
            return
        if cancelled:
            raise ExportCancelled

    return publish


def export_job_run(*, job_id: int) -> str:
    """Stream the job's rows to its file. Returns the final status. Idempotent: a redelivered run restarts."""
    now = timezone.now()
    claimed = ExportJob.objects.filter(pk=job_id, status__in=ExportJob.ACTIVE_STATUSES).update(
        status=ExportJob.Status.RUNNING, started_at=now, rows_written=0
    )
    if not claimed:
        return ExportJob.objects.filter(pk=job_id).values_list("status", flat=True).first() or "missing"
    # A cancel that came before the claim would have stopped it; a stale flag (a reused id) must not count.
    _cache_forget(job_id)
    job = ExportJob.objects.select_related("created_by").get(pk=job_id)
    name = f"{job.pk}-{secrets.token_hex(8)}.{job.file_format}"
    final_path = exports_root() / name
    part_path = final_path.with_suffix(".part")
    try:
        target = get_target(job.target)
        selection = export_selection(target=target, user=job.created_by, query_string=job.query_string)
        with translation.override(job.language):  # headers and choice labels in the job's language
            rows = export_rows(
                target=target, queryset=selection.queryset, columns=job.columns, file_format=job.file_format
            )
            headers = [str(target.column(path).label) for path in job.columns]
        with part_path.open("wb") as out:
            if job.file_format == ExportJob.Format.XLSX:
                written = xlsx.write_xlsx(
                    rows=rows, headers=headers, out=out, sheet_name=target.key, on_progress=_progress_publisher(job.pk)
                )
            else:
                written = writers.write_csv(
                    rows=rows,
                    headers=headers,
                    out=out,
                    include_bom=job.include_bom,
                    on_progress=_progress_publisher(job.pk),
                )
        part_path.rename(final_path)
    except ExportCancelled:
        part_path.unlink(missing_ok=True)
        return ExportJob.Status.CANCELLED
    except Exception as exc:
        part_path.unlink(missing_ok=True)
        logger.exception("export job %s failed", job_id)
        ExportJob.objects.filter(pk=job_id, status=ExportJob.Status.RUNNING).update(
            status=ExportJob.Status.FAILED, finished_at=timezone.now(), error=repr(exc)[:ERROR_MAX_LENGTH]
        )
        return ExportJob.Status.FAILED
    finished = timezone.now()
    done = ExportJob.objects.filter(pk=job_id, status=ExportJob.Status.RUNNING).update(
        status=ExportJob.Status.DONE,
        rows_written=written,
        size_bytes=final_path.stat().st_size,
        file_name=name,
        finished_at=finished,
        expires_at=finished + timedelta(hours=settings.EXPORTS_EXPIRE_HOURS),
    )
    if not done:  # cancelled after the last progress check: the cancel wins, the file goes
        final_path.unlink(missing_ok=True)
        return ExportJob.Status.CANCELLED
    _cache_forget(job_id)
    if job.notify_by_email:
        task_publish(export_job_notify_ready_task, args=[job_id])
    return ExportJob.Status.DONE


def _cache_forget(job_id: int) -> None:
    try:
        cache.delete_many([progress_key(job_id), cancel_key(job_id)])
    except Exception:  # noqa: BLE001 - the keys expire on their own
        logger.warning("export job %s: could not clear cache keys", job_id, exc_info=True)


def can_manage(user, job: ExportJob) -> bool:
    """Owners manage their own jobs while they may still export that data; some staff may manage all."""
    if user.has_perm("portal_exports.download_any_exportjob"):
        return True
    try:
        target = get_target(job.target)
    except KeyError:
        return False
    return job.created_by_id == user.pk and user.has_perm(target.permission)


def export_job_cancel(*, job_id: int, user) -> bool:
    """Cancel a queued or running job; its partial file is removed by the run. False when already over."""
    job = ExportJob.objects.get(pk=job_id)
    if not can_manage(user, job):
        raise PermissionDenied(_("You may not cancel this export."))
    with transaction.atomic():
        cancelled = ExportJob.objects.filter(pk=job_id, status__in=ExportJob.ACTIVE_STATUSES).update(
            status=ExportJob.Status.CANCELLED, finished_at=timezone.now()
        )
        if cancelled:
            _log(user=user, job=job, flag=CHANGE, message=gettext_noop("Cancelled the export."))
    if cancelled:
        try:
            cache.set(cancel_key(job_id), 1, CACHE_TTL_SECONDS)
        except Exception:  # noqa: BLE001 - the run's final conditional UPDATE still loses to the cancel
            logger.warning("export job %s: could not publish the cancel", job_id, exc_info=True)
    return bool(cancelled)


def export_job_file(*, job_id: int, user) -> tuple[ExportJob, Path]:
    """The finished file of a job the user may download, recorded in the admin log."""
    job = ExportJob.objects.get(pk=job_id)
    if not can_manage(user, job):
        raise PermissionDenied(_("You may not download this export."))
    if job.status != ExportJob.Status.DONE or not job.file_name:
        raise ValidationError(_("This export has no file to download."))
    path = exports_root() / job.file_name
    if not path.is_file():
        raise ValidationError(_("This export's file is gone."))
    _log(user=user, job=job, flag=CHANGE, message=gettext_noop("Downloaded the export file."))
    return job, path


def export_jobs_expire(*, now=None) -> int:
    """Remove the files of finished jobs past their expiry and mark them expired, and partial files left by
    runs that died. Returns jobs expired."""
    now = now or timezone.now()
    expired = 0
    root = exports_root()
    for part in root.glob("*.part"):
        if now.timestamp() - part.stat().st_mtime > STALE_PART_SECONDS:
            part.unlink(missing_ok=True)
    due = ExportJob.objects.filter(status=ExportJob.Status.DONE, expires_at__lte=now).values_list("pk", "file_name")
    for job_id, file_name in due.iterator():
        if ExportJob.objects.filter(pk=job_id, status=ExportJob.Status.DONE).update(
            status=ExportJob.Status.EXPIRED, file_name=""
        ):
            if file_name:
                (root / file_name).unlink(missing_ok=True)
            expired += 1
    return expired


def export_job_notify_ready(*, job_id: int) -> bool:
    """Email the job's owner that the file is ready. False when there is nothing to tell."""
    job = ExportJob.objects.select_related("created_by").get(pk=job_id)
    if job.status != ExportJob.Status.DONE or not job.created_by.email:
        return False
    link = job.link or reverse("exports:job", args=[job.pk])
    with translation.override(job.language):
        target_label = str(get_target(job.target).label)
        subject = _("Your export of %(data)s is ready") % {"data": target_label}
        body = ngettext(
            "%(rows)d row is ready to download until %(expires)s:\n%(link)s",
            "%(rows)d rows are ready to download until %(expires)s:\n%(link)s",
            job.rows_written,
        ) % {
            "rows": job.rows_written,
            "expires": timezone.localtime(job.expires_at).strftime("%Y-%m-%d %H:%M %Z"),
            "link": link,
        }
    send_mail(subject, body, None, [job.created_by.email])
    return True


def export_stream_start(
    *,
    user,
    target_key: str,
    query_string: str,
    columns: list[str],
    include_bom: bool = False,
    file_format: str = ExportJob.Format.CSV,
):
    """A streamed download without a job run: records the export, returns (job, byte chunks).

    Raises TooManyRowsToStream above EXPORTS_STREAM_MAX_ROWS: a web worker is no place for it."""
    target = _checked_target(user=user, target_key=target_key)
    columns = _checked_columns(target=target, columns=columns)
    file_format = _checked_format(file_format)
    selection = export_selection(target=target, user=user, query_string=query_string)
    if selection.count > settings.EXPORTS_STREAM_MAX_ROWS:
        raise TooManyRowsToStream(
            _("%(rows)d rows are too many to stream; start a background export instead (limit %(limit)d).")
            % {"rows": selection.count, "limit": settings.EXPORTS_STREAM_MAX_ROWS}
        )
    headers = [str(target.column(path).label) for path in columns]
    rows = export_rows(target=target, queryset=selection.queryset, columns=columns, file_format=file_format)
    now = timezone.now()
    with transaction.atomic():
        job = ExportJob.objects.create(
            target=target.key,
            mode=ExportJob.Mode.STREAM,
            file_format=file_format,
            columns=columns,
            query_string=query_string,
            include_bom=include_bom,
            rows_total=selection.count,
            created_by=user,
            status=ExportJob.Status.RUNNING,
            started_at=now,
            language=translation.get_language() or "en",
        )
        _log_start(user=user, job=job, target=target, rows=selection.count, streamed=True)

    def chunks():
        size = 0
        stats: dict = {}
        status = ExportJob.Status.FAILED
        if file_format == ExportJob.Format.XLSX:
            source = xlsx.iter_xlsx(rows=rows, headers=headers, sheet_name=target.key, stats=stats)
        else:
            source = writers.iter_csv(rows=rows, headers=headers, include_bom=include_bom, stats=stats)
        try:
            for chunk in source:
                size += len(chunk)
                yield chunk
            status = ExportJob.Status.DONE
        finally:  # a client that goes away mid-download leaves a failed (incomplete) record
            ExportJob.objects.filter(pk=job.pk).update(
                status=status,
                size_bytes=size,
                finished_at=timezone.now(),
                rows_written=stats.get("rows", 0),
            )

    return job, chunks()


def _time_left(job: ExportJob, *, seconds_left: float | None) -> str:
    """The time left in words a person can act on, never a bare "-" or a count of seconds in the thousands."""
    if job.status == ExportJob.Status.QUEUED:
        return _("starts when a worker is free")
    if job.status == ExportJob.Status.DONE:
        if not (job.started_at and job.finished_at):
            return _("none: finished")
        return _("none: finished in %(took)s") % {"took": _duration((job.finished_at - job.started_at).total_seconds())}
    if not job.is_active:
        return _("none: the export has ended")
    if seconds_left is None:
        return _("estimating, once the first rows are written")
    return _("about %(left)s") % {"left": _duration(seconds_left)}


def _duration(seconds: float) -> str:
    if seconds < 1:
        return _("less than a second")
    if seconds < 90:
        return _("%(n)d s") % {"n": round(seconds)}
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 90:
        return _("%(m)d min %(s)02d s") % {"m": minutes, "s": seconds}
    return _("%(h)d h %(m)02d min") % {"h": minutes // 60, "m": minutes % 60}


def _progress_sample(job: ExportJob) -> dict | None:
    try:
        sample = cache.get(progress_key(job.pk))
    except Exception:  # noqa: BLE001 - without the cache the page shows the last stored count
        logger.warning("export job %s: cache unavailable for progress", job.pk, exc_info=True)
        return None
    return sample if isinstance(sample, dict) else None


def export_job_progress(*, job: ExportJob, now: float | None = None) -> dict:
    """What the job page shows: rows written of total, rate, time left, and the file once done.

    While running, the rate is that of the rows since the first ones arrived, and the time left is shown
    only once it rests on at least MIN_RATE_SECONDS of them; before the first rows the job is "preparing"."""
    written = job.rows_written
    total = job.rows_total or 0
    rate = 0.0
    seconds_left = None
    is_preparing = False
    if job.status == ExportJob.Status.RUNNING:
        sample = _progress_sample(job)
        if sample is None:
            written, is_preparing = 0, True
        else:
            written = int(sample["rows"])
            span = sample["at"] - sample["first_at"]
            if span > 0:
                rate = (written - sample["first_rows"]) / span
            if span >= MIN_RATE_SECONDS and rate > 0:
                behind = max((now or time.time()) - sample["at"], 0.0)  # rows go on between samples
                seconds_left = max(max(total - written, 0) / rate - behind, 0.0)
    elif job.started_at and job.finished_at and written:
        elapsed = (job.finished_at - job.started_at).total_seconds()
        rate = written / elapsed if elapsed > 0 else 0.0
    done = job.status == ExportJob.Status.DONE
    return {
        "id": job.pk,
        "status": job.status,
        "status_label": str(_("Preparing the rows") if is_preparing else job.get_status_display()),
        "is_active": job.is_active,
        "is_preparing": is_preparing,
        "rows_written": written,
        "rows_total": total,
        "percent": 100.0 if done else (round(100.0 * min(written, total) / total, 1) if total else 0.0),
        "rows_per_second": round(rate, 1),
        "seconds_left": None if seconds_left is None else round(seconds_left, 1),
        "time_left": _time_left(job, seconds_left=seconds_left),
        "size_bytes": job.size_bytes,
        "error": job.error,
        "file_format": job.file_format,
        "download_url": reverse("exports:download", args=[job.pk]) if done and job.file_name else None,
    }
