import csv
import uuid
from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.auth.models import Group, Permission
from django.utils import timezone
from django_celery_results.models import TaskResult

from backoffice.accounts.roles import ANALYSTS
from backoffice.exports.roles import ROLE_PERMISSIONS

# What an analyst needs besides the export permissions: to see the lists they filter.
VIEW_PERMISSIONS = ["django_celery_results.view_taskresult", "points.view_ledgerentry", "orders.view_order"]


@pytest.fixture(autouse=True)
def _empty_cache(redis_client):
    """Progress and cancel flags live in the cache: each test starts without any."""


@pytest.fixture(autouse=True)
def exports_root(settings, tmp_path):
    root = tmp_path / "exports"
    settings.EXPORTS_ROOT = root
    return root


def _grant(user, names):
    for name in names:
        app_label, codename = name.split(".", 1)
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


@pytest.fixture
def make_analyst(django_user_model):
    """Staff in the Analysts group with the analyst permissions of exports (and views of the lists)."""

    def make(username="analyst", **extra):
        group, _ = Group.objects.get_or_create(name=ANALYSTS)
        user = django_user_model.objects.create_user(
            username=username, password="pw-analyst", email=f"{username}@example.com", is_staff=True, **extra
        )
        user.groups.add(group)
        _grant(user, [*VIEW_PERMISSIONS, *ROLE_PERMISSIONS[ANALYSTS]])
        return django_user_model.objects.get(pk=user.pk)  # fresh: no stale permission cache

    return make


@pytest.fixture
def grant():
    def do(user, *names):
        _grant(user, names)
        return type(user).objects.get(pk=user.pk)

    return do


@pytest.fixture
def make_results():
    def make(*rows):
        """TaskResults from dicts (task_name, status, result, worker...), in order."""
        now = timezone.now()
        return TaskResult.objects.bulk_create(
            [
                TaskResult(
                    task_id=str(uuid.uuid4()),
                    task_name=row.get("task_name", "backoffice.ping"),
                    status=row.get("status", "SUCCESS"),
                    result=row.get("result", '"ok"'),
                    worker=row.get("worker", "w@host"),
                    date_done=row.get("date_done", now),
                )
                for row in rows
            ]
        )

    return make


def read_csv(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


@pytest.fixture
def make_ledger(django_user_model):
    def make(kinds: list[str], *, username="holder"):
        """One ledger entry per kind given ("award" +10, anything else -5), on one account, oldest first."""
        from points.models import Account, LedgerEntry

        owner = django_user_model.objects.create_user(username=username, password="x")
        account = Account.objects.create(user=owner, balance=0)
        entries, balance = [], 0
        for index, kind in enumerate(kinds):
            amount = 10 if kind == "award" or balance < 5 else -5
            entries.append(
                LedgerEntry(
                    serial_number=f"{username}-{index}",
                    account=account,
                    amount=amount,
                    balance_before=balance,
                    balance_after=balance + amount,
                    kind=kind,
                    idempotency_key=f"{username}:{index}",
                    reason=f"entry {index}",
                )
            )
            balance += amount
        created = LedgerEntry.objects.bulk_create(entries, batch_size=2000)
        Account.objects.filter(pk=account.pk).update(balance=balance)
        return created

    return make


@pytest.fixture
def no_enqueue(monkeypatch):
    from backoffice.exports import services

    sent = []
    monkeypatch.setattr(services.export_job_run_task, "apply_async", lambda args, task_id: sent.append(args[0]))
    return sent


WHEN = datetime(2026, 11, 30, 21, 20, 56, 590750, tzinfo=UTC)  # 2026-12-01 10:20:56 in Auckland (NZDT)
ZONE = "Pacific/Auckland"
AWKWARD = [
    "see note\n=1+1;",
    "plain\t=7*6\tend",
    '=HYPERLINK("http://x")',
    "'quoted",
    "a;-1,+2",
    "back\\slash & <tag> _x0041_ \x01 ctrl",
    "  spaced  ",
]
SERIALS = ["20261130212715342936571109442887", "2026113021271563425e367836439887", "B000001", ".5"]
LEDGER_COLUMNS = ["id", "serial_number", "amount", "kind", "order_number", "reason", "created_at"]


@pytest.fixture
def ledger(django_user_model):
    """One entry per serial (and per awkward reason), all made at WHEN, oldest first."""
    from points.models import Account, LedgerEntry

    owner = django_user_model.objects.create_user(username="holder", password="x")
    account = Account.objects.create(user=owner, balance=0)
    entries, balance = [], 0
    reasons = AWKWARD + [""] * (len(SERIALS) - len(AWKWARD))
    with time_machine.travel(WHEN, tick=False):
        for index, reason in enumerate(reasons):
            serial = SERIALS[index] if index < len(SERIALS) else f"S{index}"
            kind = LedgerEntry.Kind.AWARD if index % 2 == 0 else LedgerEntry.Kind.ADJUST
            entries.append(
                LedgerEntry.objects.create(
                    serial_number=serial,
                    account=account,
                    amount=7,
                    balance_before=balance,
                    balance_after=balance + 7,
                    kind=kind,
                    idempotency_key=f"k{index}",
                    order_number="000123" if index == 0 else "",
                    reason=reason,
                )
            )
            balance += 7
    return entries


def export_job(user, *, file_format, columns=LEDGER_COLUMNS, target="ledger"):
    from backoffice.exports import services
    from backoffice.exports.models import ExportJob

    options = {} if file_format == "csv" else {"file_format": file_format}  # CSV is the default
    job = services.export_job_create(user=user, target_key=target, query_string="", columns=columns, **options)
    services.export_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ExportJob.Status.DONE, job.error
    return job
