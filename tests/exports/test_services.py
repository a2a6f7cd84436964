import csv
import io

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.core import mail
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django_celery_results.models import TaskResult
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backoffice.auditing import audit_message
from backoffice.exports import services, writers
from backoffice.exports.formulas import FORMULA_TRIGGERS, PREFIX, restore
from backoffice.exports.models import ExportJob
from tests.exports.conftest import read_csv

pytestmark = pytest.mark.django_db

RESULT_COLUMNS = ["id", "task_name", "status", "worker", "result"]
# PostgreSQL text cannot hold NUL; surrogates are not UTF-8. Everything else is fair game.
CELL = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=30)
RISKY_CELL = st.builds(lambda start, rest: start + rest, st.sampled_from([*FORMULA_TRIGGERS, PREFIX]), CELL)


def _run(user, *, target="results", columns=RESULT_COLUMNS, query_string="", **options) -> ExportJob:
    job = services.export_job_create(
        user=user, target_key=target, query_string=query_string, columns=columns, **options
    )
    services.export_job_run(job_id=job.pk)
    job.refresh_from_db()
    return job


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.one_of(CELL, RISKY_CELL), min_size=1, max_size=12))
def test_fuzz_no_exported_cell_starts_with_a_formula_trigger_and_text_reads_back(
    values, make_analyst, make_results, exports_root
):
    with transaction.atomic():  # each example starts from an empty table and leaves nothing behind
        user = make_analyst(username="fuzz")
        rows = make_results(*({"task_name": v[:255], "worker": v[:100], "result": v} for v in values))
        job = _run(user)
        transaction.set_rollback(True)

    assert job.status == ExportJob.Status.DONE
    header, *cells = read_csv(exports_root / job.file_name)
    assert header == ["ID", "Task name", "Status", "Worker", "Result"]
    assert len(cells) == len(rows) == job.rows_written
    expected = {row.pk: row for row in rows}
    for line in cells:
        assert not any(cell.startswith(FORMULA_TRIGGERS) for cell in line)
        row = expected.pop(int(line[0]))
        assert [restore(cell) for cell in line[1:]] == [row.task_name, row.status, row.worker, row.result]
    assert expected == {}


def _ledger_entries(django_user_model):
    from points.models import Account, LedgerEntry

    owner = django_user_model.objects.create_user(username="=owner", password="x")
    account = Account.objects.create(user=owner, balance=30)
    award = LedgerEntry.objects.create(
        serial_number="S1",
        account=account,
        amount=50,
        balance_before=0,
        balance_after=50,
        kind=LedgerEntry.Kind.AWARD,
        idempotency_key="k1",
        reason="welcome",
    )
    redeem = LedgerEntry.objects.create(
        serial_number="S2",
        account=account,
        amount=-20,
        balance_before=50,
        balance_after=30,
        kind=LedgerEntry.Kind.REDEEM,
        idempotency_key="k2",
        reason="-20 for order",
        order_number="@O-1",
    )
    return award, redeem


def test_numeric_columns_stay_numbers_while_text_is_neutralised(make_analyst, exports_root, django_user_model):
    award, redeem = _ledger_entries(django_user_model)
    user = make_analyst()

    job = _run(
        user,
        target="ledger",
        columns=[
            "id",
            "account__user__username",
            "amount",
            "balance_before",
            "balance_after",
            "order_number",
            "reason",
        ],
    )

    raw = (exports_root / job.file_name).read_text(encoding="utf-8")
    assert list(csv.reader(io.StringIO(raw))) == [
        ["ID", "User", "Amount", "Balance before", "Balance after", "Order number", "Reason"],
        [str(redeem.pk), "'=owner", "-20", "50", "30", "'@O-1", "'-20 for order"],
        [str(award.pk), "'=owner", "50", "0", "50", "", "welcome"],
    ]
    assert f"{redeem.pk},'=owner,-20,50,30," in raw  # numbers unquoted, so a spreadsheet reads numbers


def test_bom_option_writes_utf8_bom_first(make_analyst, make_results, exports_root):
    make_results({"task_name": "naïve ✓"})
    job = _run(make_analyst(), columns=["task_name"], include_bom=True)

    data = (exports_root / job.file_name).read_bytes()
    assert data.startswith(b"\xef\xbb\xbfTask name")
    assert data.decode("utf-8-sig").splitlines() == ["Task name", "naïve ✓"]


def test_job_exports_exactly_the_rows_the_changelist_filter_shows(
    admin_client, make_analyst, make_results, exports_root
):
    make_results(
        *(
            {
                "status": "FAILURE" if i % 3 == 0 else "SUCCESS",
                "task_name": "points.relay" if i % 2 else "backoffice.ping",
            }
            for i in range(40)
        )
    )
    query = "status=FAILURE&task_name=points.relay"
    response = admin_client.get(f"/admin/django_celery_results/taskresult/?{query}")
    assert response.status_code == 200
    shown = [row.pk for row in response.context["cl"].result_list]
    assert len(shown) == 7  # i in 3, 9, 15, 21, 27, 33, 39

    job = _run(make_analyst(), columns=["id", "status", "task_name"], query_string=query)

    header, *cells = read_csv(exports_root / job.file_name)
    assert [int(line[0]) for line in cells] == shown  # same rows, same order
    assert {(line[1], line[2]) for line in cells} == {("points.relay", "FAILURE")}  # registry column order
    assert job.rows_total == job.rows_written == 7


def test_unknown_filter_is_a_validation_error_and_creates_nothing(make_analyst, make_results):
    make_results({})
    with pytest.raises(ValidationError):
        services.export_job_create(
            user=make_analyst(), target_key="results", query_string="no_such_field__gt=1", columns=["id"]
        )
    assert ExportJob.objects.count() == 0
    assert LogEntry.objects.count() == 0


def test_unknown_columns_are_rejected(make_analyst):
    with pytest.raises(ValidationError):
        services.export_job_create(user=make_analyst(), target_key="results", query_string="", columns=["password"])
    assert ExportJob.objects.count() == 0


def test_export_needs_the_targets_permission(django_user_model):
    staff = django_user_model.objects.create_user(username="staff", password="x", is_staff=True)
    with pytest.raises(PermissionDenied):
        services.export_job_create(user=staff, target_key="results", query_string="", columns=["id"])
    assert ExportJob.objects.count() == 0


def test_create_records_the_export_in_the_admin_log_and_enqueues_after_commit(
    make_analyst, make_results, on_commit, monkeypatch
):
    make_results({}, {})
    sent = []
    monkeypatch.setattr(services.export_job_run_task, "apply_async", lambda args, task_id: sent.append((args, task_id)))
    user = make_analyst()

    with on_commit(execute=True):
        job = services.export_job_create(
            user=user,
            target_key="results",
            query_string="status=SUCCESS",
            columns=["id"],
            link_for=lambda pk: f"https://portal.example/admin/exports/jobs/{pk}/",
        )

    assert sent == [([job.pk], job.task_id)]
    assert job.rows_total == 2 and job.status == ExportJob.Status.QUEUED
    assert job.link == f"https://portal.example/admin/exports/jobs/{job.pk}/"
    entry = LogEntry.objects.get()
    assert (entry.user_id, entry.object_id, entry.action_flag) == (user.pk, str(job.pk), ADDITION)
    assert audit_message(entry) == "Started export of Task results: 2 rows, filters: status=SUCCESS"


def test_a_job_whose_run_the_broker_refused_stays_queued_until_the_requeue_sweeper_publishes_it(
    make_analyst, make_results, on_commit, monkeypatch, caplog
):
    make_results({})
    user = make_analyst()

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(services.export_job_run_task, "apply_async", broker_down)
    with on_commit(execute=True):
        job = services.export_job_create(user=user, target_key="results", query_string="", columns=["id"])

    job.refresh_from_db()
    assert (job.status, job.task_id) == (ExportJob.Status.QUEUED, "")  # the mark the sweeper looks for
    assert [r.levelname for r in caplog.records if r.name == "backoffice.publishing"] == ["WARNING"]

    sent = []
    monkeypatch.setattr(services.export_job_run_task, "apply_async", lambda args, task_id: sent.append((args, task_id)))
    with on_commit(execute=True):
        assert services.export_jobs_requeue() == 1
    with on_commit(execute=True):
        assert services.export_jobs_requeue() == 0  # published once: nothing left to sweep

    job.refresh_from_db()
    assert sent == [([job.pk], job.task_id)] and len(job.task_id) == 32
    assert services.export_job_run(job_id=job.pk) == ExportJob.Status.DONE


def test_the_requeue_sweeper_runs_every_minute_on_the_default_schedule():
    from backoffice.celery import app
    from backoffice.schedules.defaults import DEFAULT_SCHEDULES

    app.loader.import_default_modules()
    (default,) = [d for d in DEFAULT_SCHEDULES if d.task == "exports.requeue"]
    assert "exports.requeue" in app.tasks and default.every_seconds == 60


def test_cancel_mid_run_stops_and_removes_the_partial_file(make_analyst, make_results, exports_root, monkeypatch):
    make_results(*({} for _ in range(50)))
    user = make_analyst()
    job = services.export_job_create(user=user, target_key="results", query_string="", columns=["id"])
    monkeypatch.setattr(writers, "PROGRESS_EVERY_ROWS", 10)
    monkeypatch.setattr(services, "PROGRESS_INTERVAL_SECONDS", 0)
    seen = []
    real_publisher = services._progress_publisher

    def publisher(job_id):
        publish = real_publisher(job_id)

        def on_progress(written):
            seen.append((written, [p.name for p in exports_root.iterdir()]))
            if written >= 20:  # what export_job_cancel tells a running job
                cache.set(services.cancel_key(job_id), 1)
            publish(written)

        return on_progress

    monkeypatch.setattr(services, "_progress_publisher", publisher)

    assert services.export_job_run(job_id=job.pk) == ExportJob.Status.CANCELLED

    assert [written for written, _ in seen] == [10, 20]  # stopped at the first check after the cancel
    assert seen[-1][1] and seen[-1][1][0].endswith(".part")  # a partial file existed...
    assert list(exports_root.iterdir()) == []  # ...and is gone
    job.refresh_from_db()
    assert job.file_name == "" and job.rows_written == 0


def test_cancel_of_a_queued_job_means_it_never_runs(make_analyst, make_results, exports_root):
    make_results({})
    user = make_analyst()
    job = services.export_job_create(user=user, target_key="results", query_string="", columns=["id"])

    assert services.export_job_cancel(job_id=job.pk, user=user) is True
    assert services.export_job_run(job_id=job.pk) == ExportJob.Status.CANCELLED

    job.refresh_from_db()
    assert job.status == ExportJob.Status.CANCELLED and job.started_at is None
    assert not exports_root.exists() or list(exports_root.iterdir()) == []
    assert services.export_job_cancel(job_id=job.pk, user=user) is False  # over: nothing to cancel
    assert LogEntry.objects.filter(action_flag=CHANGE).count() == 1


def test_analyst_cannot_download_or_cancel_another_users_export(make_analyst, make_results, grant):
    make_results({})
    owner, other = make_analyst("owner"), make_analyst("other")
    job = _run(owner, columns=["id"])

    with pytest.raises(PermissionDenied):
        services.export_job_file(job_id=job.pk, user=other)
    with pytest.raises(PermissionDenied):
        services.export_job_cancel(job_id=job.pk, user=other)
    assert LogEntry.objects.filter(user=other).count() == 0

    _, path = services.export_job_file(job_id=job.pk, user=owner)
    assert path.read_text().splitlines() == ["ID", str(TaskResult.objects.get().pk)]
    supervisor = grant(other, "portal_exports.download_any_exportjob")
    assert services.export_job_file(job_id=job.pk, user=supervisor)[1] == path


def test_owner_who_lost_the_export_permission_cannot_download(make_analyst, make_results):
    make_results({})
    owner = make_analyst("owner")
    job = _run(owner, columns=["id"])
    owner.user_permissions.clear()
    owner.groups.clear()
    owner = type(owner).objects.get(pk=owner.pk)

    with pytest.raises(PermissionDenied):
        services.export_job_file(job_id=job.pk, user=owner)


def test_expired_files_are_removed(make_analyst, make_results, exports_root):
    make_results({})
    job = _run(make_analyst(), columns=["id"])
    path = exports_root / job.file_name
    assert path.exists()

    assert services.export_jobs_expire(now=job.expires_at - timezone.timedelta(seconds=1)) == 0
    assert path.exists()
    assert services.export_jobs_expire(now=job.expires_at) == 1

    job.refresh_from_db()
    assert job.status == ExportJob.Status.EXPIRED and job.file_name == ""
    assert not path.exists()
    with pytest.raises(ValidationError):
        services.export_job_file(job_id=job.pk, user=job.created_by)


def test_done_job_emails_its_owner_when_asked(make_analyst, make_results, monkeypatch):
    make_results({}, {}, {})
    sent = []
    monkeypatch.setattr(services.export_job_notify_ready_task, "apply_async", lambda args: sent.append(*args))
    job = _run(make_analyst(), columns=["id"], notify_by_email=True, link_for=lambda pk: f"https://p.example/{pk}")

    assert sent == [job.pk]
    assert services.export_job_notify_ready(job_id=job.pk) is True
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["analyst@example.com"]
    assert mail.outbox[0].subject == "Your export of Task results is ready"
    assert f"https://p.example/{job.pk}" in mail.outbox[0].body
    assert mail.outbox[0].body.startswith("3 rows are ready")


def test_no_email_unless_asked(make_analyst, make_results, monkeypatch):
    make_results({})
    sent = []
    monkeypatch.setattr(services.export_job_notify_ready_task, "apply_async", lambda args: sent.append(*args))
    _run(make_analyst(), columns=["id"])
    assert sent == []


def test_failed_run_records_the_error_and_leaves_no_file(make_analyst, make_results, exports_root, monkeypatch):
    make_results({})
    job = services.export_job_create(user=make_analyst(), target_key="results", query_string="", columns=["id"])

    def broken(**kwargs):
        kwargs["out"].write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(writers, "write_csv", broken)
    assert services.export_job_run(job_id=job.pk) == ExportJob.Status.FAILED

    job.refresh_from_db()
    assert job.status == ExportJob.Status.FAILED and job.error == "OSError('disk full')"
    assert list(exports_root.iterdir()) == []


def test_progress_reports_rows_rate_and_download(make_analyst, make_results):
    make_results({}, {})
    job = _run(make_analyst(), columns=["id"])

    progress = services.export_job_progress(job=job)

    assert progress["status"] == "done" and progress["percent"] == 100.0
    assert (progress["rows_written"], progress["rows_total"]) == (2, 2)
    assert progress["download_url"] == f"/admin/exports/jobs/{job.pk}/download/"
    assert progress["size_bytes"] == job.size_bytes > 0


def test_stream_export_yields_the_csv_and_records_it(make_analyst, make_results):
    rows = make_results({"task_name": "=cmd"}, {"task_name": "ok"})
    user = make_analyst()

    job, chunks = services.export_stream_start(
        user=user, target_key="results", query_string="", columns=["id", "task_name"]
    )
    body = b"".join(chunks).decode()

    newest_first = sorted(rows, key=lambda r: (r.date_done, r.pk), reverse=True)
    assert body.splitlines() == ["ID,Task name"] + [
        f"{r.pk},{'' + chr(39) + '=cmd' if r.task_name == '=cmd' else 'ok'}" for r in newest_first
    ]
    job.refresh_from_db()
    assert (job.mode, job.status, job.rows_written, job.size_bytes) == ("stream", "done", 2, len(body.encode()))
    assert audit_message(LogEntry.objects.get()).startswith("Streamed export of Task results: 2 rows")


def test_stream_export_refuses_too_many_rows(make_analyst, make_results, settings):
    settings.EXPORTS_STREAM_MAX_ROWS = 1
    make_results({}, {})
    with pytest.raises(ValidationError):
        services.export_stream_start(user=make_analyst(), target_key="results", query_string="", columns=["id"])
    assert ExportJob.objects.count() == 0


def test_expire_removes_partial_files_left_by_dead_runs_only(exports_root):
    import os

    exports_root.mkdir(parents=True)
    stale, live = exports_root / "1-a.part", exports_root / "2-b.part"
    stale.write_bytes(b"x")
    live.write_bytes(b"y")
    now = timezone.now()
    old = now.timestamp() - services.STALE_PART_SECONDS - 1
    os.utime(stale, (old, old))

    assert services.export_jobs_expire(now=now) == 0
    assert sorted(p.name for p in exports_root.iterdir()) == ["2-b.part"]


def test_expiry_runs_on_the_default_schedule():
    from backoffice.celery import app
    from backoffice.schedules.defaults import DEFAULT_SCHEDULES

    app.loader.import_default_modules()
    (default,) = [d for d in DEFAULT_SCHEDULES if d.task == "exports.expire"]
    assert "exports.expire" in app.tasks and default.crontab == {"minute": "7"}


def test_role_permissions_exist():
    from backoffice.accounts.roles import resolve_permissions
    from backoffice.exports.roles import ROLE_PERMISSIONS

    for names in ROLE_PERMISSIONS.values():
        assert len(resolve_permissions(set(names))) == len(names)


def test_ledger_job_exports_exactly_the_filtered_and_searched_changelist_rows(
    admin_client, make_analyst, make_ledger, exports_root
):
    make_ledger(["award", "redeem", "refund"] * 30, username="alice")
    make_ledger(["award", "redeem"] * 20, username="bob")
    query = "kind__exact=redeem&q=alice"
    response = admin_client.get(f"/admin/points/ledgerentry/?{query}")
    assert response.status_code == 200
    shown = [entry.pk for entry in response.context["cl"].result_list]
    assert len(shown) == 30

    job = _run(make_analyst(), target="ledger", columns=["id", "account__user__username", "kind"], query_string=query)

    header, *cells = read_csv(exports_root / job.file_name)
    assert [int(line[0]) for line in cells] == shown
    assert {(line[1], line[2]) for line in cells} == {("alice", "redeem")}
