import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from backoffice.exports import services
from backoffice.exports.models import ExportJob
from backoffice.extension_point import portal_declarations_check
from tests.exports.conftest import read_csv

pytestmark = pytest.mark.django_db


def _login(client, user):
    client.force_login(user)
    return client


def test_start_page_shows_the_filtered_count(client, make_analyst, make_results):
    make_results({"status": "FAILURE"}, {"status": "SUCCESS"}, {"status": "FAILURE"})
    _login(client, make_analyst())

    response = client.get(reverse("exports:start", args=["results"]) + "?status=FAILURE")

    assert response.status_code == 200
    assert response.context["count"] == 2
    assert response.context["query_string"] == "status=FAILURE"


def test_post_starts_a_job_with_the_filters_and_redirects_to_its_page(
    client, make_analyst, make_results, no_enqueue, on_commit
):
    make_results({"status": "FAILURE"}, {"status": "SUCCESS"})
    user = make_analyst()
    _login(client, user)

    with on_commit(execute=True):
        response = client.post(
            reverse("exports:start", args=["results"]),
            {"query_string": "status=FAILURE", "columns": ["id", "status"], "notify_by_email": "on", "start": "1"},
        )

    job = ExportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("exports:job", args=[job.pk])
    assert (job.created_by, job.query_string, job.columns, job.rows_total) == (
        user,
        "status=FAILURE",
        ["id", "status"],
        1,
    )
    assert job.notify_by_email is True and job.link == f"http://testserver/admin/exports/jobs/{job.pk}/"
    assert no_enqueue == [job.pk]


def test_bad_filters_give_a_form_error_not_a_500(client, make_analyst, no_enqueue):
    _login(client, make_analyst())

    response = client.post(
        reverse("exports:start", args=["results"]),
        {"query_string": "bogus__field=1", "columns": ["id"], "start": "1"},
    )

    assert response.status_code == 400
    assert "These filters do not apply to Task results." in response.content.decode()
    assert ExportJob.objects.count() == 0 and no_enqueue == []


def test_no_columns_is_a_form_error(client, make_analyst, no_enqueue):
    _login(client, make_analyst())
    response = client.post(reverse("exports:start", args=["results"]), {"query_string": "", "start": "1"})
    assert response.status_code == 400
    assert ExportJob.objects.count() == 0


def test_staff_without_export_permission_gets_403(client, django_user_model):
    staff = django_user_model.objects.create_user(username="s", password="x", is_staff=True)
    _login(client, staff)

    assert client.get(reverse("exports:start", args=["results"])).status_code == 403
    assert client.get(reverse("exports:index")).status_code == 403
    assert client.get(reverse("exports:start", args=["nothing-here"])).status_code == 404


def test_anonymous_is_sent_to_login(client):
    response = client.get(reverse("exports:start", args=["results"]))
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_download_by_owner_other_analyst_and_supervisor(client, make_analyst, make_results, no_enqueue, grant):
    make_results({}, {})
    owner, other = make_analyst("owner"), make_analyst("other")
    job = services.export_job_create(user=owner, target_key="results", query_string="", columns=["id"])
    services.export_job_run(job_id=job.pk)
    url = reverse("exports:download", args=[job.pk])

    _login(client, other)
    assert client.get(url).status_code == 403
    assert client.get(reverse("exports:job", args=[job.pk])).status_code == 403
    assert client.get(reverse("exports:status", args=[job.pk])).status_code == 403
    assert LogEntry.objects.filter(user=other).count() == 0

    _login(client, owner)
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="results-')
    body = b"".join(response.streaming_content).decode()
    assert len(body.splitlines()) == 3  # header and two rows

    _login(client, grant(other, "portal_exports.download_any_exportjob"))
    assert client.get(url).status_code == 200


def test_status_json_and_cancel(client, make_analyst, make_results, no_enqueue):
    make_results({})
    user = make_analyst()
    job = services.export_job_create(user=user, target_key="results", query_string="", columns=["id"])
    _login(client, user)

    status = client.get(reverse("exports:status", args=[job.pk])).json()
    assert (status["status"], status["rows_total"], status["is_active"]) == ("queued", 1, True)

    assert client.get(reverse("exports:cancel", args=[job.pk])).status_code == 405
    response = client.post(reverse("exports:cancel", args=[job.pk]))
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == ExportJob.Status.CANCELLED
    assert client.get(reverse("exports:download", args=[job.pk])).status_code == 400


def test_job_page_renders_progress_bar(client, make_analyst, make_results, no_enqueue):
    make_results({}, {})
    user = make_analyst()
    job = services.export_job_create(user=user, target_key="results", query_string="", columns=["id"])
    _login(client, user)

    html = client.get(reverse("exports:job", args=[job.pk])).content.decode()

    assert '<progress id="export-progress" value="0" max="2"' in html
    assert reverse("exports:status", args=[job.pk]) in html


def test_stream_download_for_mid_size_exports(client, make_analyst, make_results):
    make_results({"task_name": "@x"}, {"task_name": "y"})
    _login(client, make_analyst())

    response = client.post(
        reverse("exports:start", args=["results"]), {"query_string": "", "columns": ["task_name"], "stream": "1"}
    )

    assert response.status_code == 200 and response.streaming
    assert sorted(b"".join(response.streaming_content).decode().splitlines()) == ["'@x", "Task name", "y"]
    assert ExportJob.objects.get().mode == ExportJob.Mode.STREAM


def test_changelists_of_exportable_models_get_the_button(client, make_analyst, make_results):
    make_results({})
    _login(client, make_analyst())

    response = client.get("/admin/django_celery_results/taskresult/?status=SUCCESS")

    assert response.status_code == 200
    html = response.content.decode()
    assert f'href="{reverse("exports:start", args=["results"])}?status=SUCCESS"' in html
    assert "Export in background" in html


def test_no_registered_admin_is_patched_at_start_up():
    """The button and the stock-export rules come from the admins' own ExportAdminMixin, not from attributes
    that the exports app sets on other apps' ModelAdmin instances."""
    for model in apps.get_models():
        if admin.site.is_registered(model):
            model_admin = admin.site.get_model_admin(model)
            patched = {
                "exports_base_change_list_template",  # what the start-up patching used to leave behind
                "exports_guarded",
                "has_export_permission",
                "has_import_permission",
                "get_export_resource_classes",
            }
            assert not patched & set(vars(model_admin)), model._meta.label


def test_an_export_target_whose_admin_lacks_the_mixin_fails_the_system_check():
    from points.models import LedgerEntry

    site = admin.site
    stock = type("LedgerEntryAdmin", (admin.ModelAdmin,), {})
    registered = site.get_model_admin(LedgerEntry)
    site.unregister(LedgerEntry)
    site.register(LedgerEntry, stock)
    try:
        errors = portal_declarations_check(None)
    finally:
        site.unregister(LedgerEntry)
        site.register(LedgerEntry, type(registered))
    assert [(error.id, error.msg) for error in errors] == [
        ("portal.E004", "export target ledger: the admin of points.LedgerEntry does not inherit ExportAdminMixin")
    ]


def test_job_list_shows_only_own_jobs(client, make_analyst, make_results, no_enqueue):
    make_results({})
    owner, other = make_analyst("owner"), make_analyst("other")
    mine = services.export_job_create(user=owner, target_key="results", query_string="", columns=["id"])
    services.export_job_create(user=other, target_key="results", query_string="", columns=["id"])
    _login(client, owner)

    response = client.get("/admin/portal_exports/exportjob/")

    assert response.status_code == 200
    assert [job.pk for job in response.context["cl"].result_list] == [mine.pk]


def test_csv_written_by_job_matches_rows(make_analyst, make_results, exports_root, no_enqueue):
    rows = make_results({}, {}, {})
    user = make_analyst()
    job = services.export_job_create(user=user, target_key="results", query_string="", columns=["id"])
    services.export_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert sorted(int(r[0]) for r in read_csv(exports_root / job.file_name)[1:]) == sorted(r.pk for r in rows)


def test_orders_changelist_gets_the_button_beside_the_stock_export(client, make_analyst):
    _login(client, make_analyst())

    html = client.get("/admin/orders/order/?status__exact=paid").content.decode()

    assert f'href="{reverse("exports:start", args=["orders"])}?status__exact=paid"' in html
    assert "/admin/orders/order/export/" in html  # import-export's own button is still there


def test_exports_show_in_the_audit_view(admin_client, make_analyst, make_results, no_enqueue):
    make_results({})
    user = make_analyst()
    job = services.export_job_create(user=user, target_key="results", query_string="status=SUCCESS", columns=["id"])
    services.export_job_run(job_id=job.pk)
    services.export_job_file(job_id=job.pk, user=user)

    html = admin_client.get(reverse("audit:index")).content.decode()

    assert "Started export of Task results: 1 row, filters: status=SUCCESS" in html
    assert "Downloaded the export file." in html
