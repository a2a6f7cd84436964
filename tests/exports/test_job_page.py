"""The export job page reads as the person who started it would: labels for the filters, names next to ids, a
time left in words, and no empty error box."""

import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from backoffice.exports import services
from backoffice.exports.models import ExportJob
from backoffice.exports.registry import get_target
from backoffice.exports.selectors import filter_labels
from tests.accounts.staff import staff_user

pytestmark = pytest.mark.django_db


def test_filters_read_as_field_names_choices_and_related_names():
    alice = staff_user("alice")
    target = get_target("ledger")

    labels = filter_labels(
        target=target,
        query_string=f"kind__exact=adjust&created_at__gte=2026-01-01&created_by__id__exact={alice.pk}&q=bob&o=2&p=3",
    )

    assert labels == [
        "kind = adjustment",
        "created at ≥ 2026-01-01",
        f"created by = alice (#{alice.pk})",
        "search: bob",
    ]


def _job(**fields) -> ExportJob:
    alice = get_user_model().objects.filter(username="alice").first() or staff_user("alice")
    return ExportJob.objects.create(target="ledger", created_by=alice, **fields)


def test_time_left_reads_in_words_for_each_stage():
    now = timezone.now()
    queued = _job()
    running = _job(
        status=ExportJob.Status.RUNNING, rows_total=1000, rows_written=100, started_at=now - timedelta(seconds=10)
    )
    starting = _job(status=ExportJob.Status.RUNNING, rows_total=1000, started_at=now)
    done = _job(
        status=ExportJob.Status.DONE,
        rows_total=5,
        rows_written=5,
        started_at=now,
        finished_at=now + timedelta(seconds=125),
    )

    clock = time.time()
    sample = {"rows": 100, "at": clock, "first_rows": 0, "first_at": clock - 10}  # what the worker reports
    cache.set(services.progress_key(running.pk), sample)

    assert services.export_job_progress(job=queued)["time_left"] == "starts when a worker is free"
    assert services.export_job_progress(job=running, now=clock)["time_left"] == "about 1 min 30 s"
    assert services.export_job_progress(job=starting)["time_left"] == "estimating, once the first rows are written"
    assert services.export_job_progress(job=done)["time_left"] == "none: finished in 2 min 05 s"


def test_the_job_page_shows_labels_names_and_no_empty_error_box(client):
    job = _job(status=ExportJob.Status.DONE, rows_total=5, rows_written=5, query_string="kind__exact=adjust&q=bob")
    job.created_by.first_name, job.created_by.last_name = "Alice", "Martin"
    job.created_by.save()
    client.force_login(staff_user("root", superuser=True))

    page = client.get(reverse("exports:job", args=[job.pk])).content.decode()

    assert "kind = adjustment" in page and "search: bob" in page
    assert "kind__exact" not in page
    assert f"Alice Martin (alice, #{job.created_by_id})" in page
    assert f"Export #{job.pk}: Points ledger" in page
    assert "none: finished" in page
