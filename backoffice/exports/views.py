"""Export pages inside the admin: choose, start, follow, cancel and download. Thin: services do the work."""

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpResponseBadRequest, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from backoffice.exports import services
from backoffice.exports.forms import ExportForm
from backoffice.exports.models import ExportJob
from backoffice.exports.registry import available_targets, get_target
from backoffice.exports.selectors import export_selection, filter_labels

site = admin.site


def _context(request, **extra):
    return {**site.each_context(request), **extra}


def _target_or_404(request, key):
    try:
        target = get_target(key)
    except KeyError:
        raise Http404(_("No such export.")) from None
    if not request.user.has_perm(target.permission):
        raise PermissionDenied
    return target


def _job_or_404(request, pk) -> ExportJob:
    job = get_object_or_404(ExportJob.objects.select_related("created_by"), pk=pk)
    if not services.can_manage(request.user, job):
        raise PermissionDenied
    return job


def _messages(error: ValidationError) -> list[str]:
    return list(error.messages)


@require_GET
def index(request):
    targets = []
    for target in available_targets():
        if not request.user.has_perm(target.permission):
            continue
        opts = target.model._meta
        targets.append(
            {
                "target": target,
                "changelist_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
                if site.is_registered(target.model)
                else None,
                "start_url": reverse("exports:start", args=[target.key]),
            }
        )
    if not targets:
        raise PermissionDenied
    return TemplateResponse(request, "exports/index.html", _context(request, title=_("New export"), targets=targets))


def start(request, target):
    target = _target_or_404(request, target)
    query_string = request.POST.get("query_string", "") if request.method == "POST" else request.GET.urlencode()
    form = ExportForm(request.POST or None, target=target, initial={"query_string": query_string})
    selection_error = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        options = {
            "user": request.user,
            "target_key": target.key,
            "query_string": data["query_string"],
            "columns": data["columns"],
            "include_bom": data["include_bom"],
            "file_format": data["file_format"],
        }
        try:
            handed_over = False
            if "stream" in request.POST:
                try:
                    job, chunks = services.export_stream_start(**options)
                except services.TooManyRowsToStream:
                    handed_over = True  # too big for a web worker: it runs as a background job instead
                else:
                    response = StreamingHttpResponse(chunks, content_type=job.content_type)
                    response["Content-Disposition"] = content_disposition_header(True, job.download_name)
                    return response
            job = services.export_job_create(
                **options,
                notify_by_email=data["notify_by_email"],
                link_for=lambda pk: request.build_absolute_uri(reverse("exports:job", args=[pk])),
            )
        except ValidationError as error:
            for message in _messages(error):
                form.add_error(None, message)
        else:
            if handed_over:
                messages.info(request, _("Too many rows to download now: the export runs in the background."))
            else:
                messages.success(request, _("The export has started."))
            return redirect("exports:job", pk=job.pk)
    try:
        selection = export_selection(target=target, user=request.user, query_string=query_string)
        count = selection.count
    except ValidationError as error:
        selection_error, count = " ".join(_messages(error)), None
    status = 400 if (selection_error or form.errors) and request.method == "POST" else 200
    opts = target.model._meta
    changelist_url = (
        reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist") if site.is_registered(target.model) else None
    )
    context = _context(
        request,
        title=_("Export %(data)s") % {"data": target.label},
        target=target,
        form=form,
        count=count,
        selection_error=selection_error,
        query_string=query_string,
        changelist_url=changelist_url,
        stream_max_rows=settings.EXPORTS_STREAM_MAX_ROWS,
    )
    return TemplateResponse(request, "exports/start.html", context, status=status)


@require_GET
def job_page(request, pk):
    job = _job_or_404(request, pk)
    target = get_target(job.target)
    context = _context(
        request,
        title=_("Export #%(id)s: %(data)s") % {"id": job.pk, "data": target.label},
        job=job,
        target=target,
        filters=filter_labels(target=target, query_string=job.query_string),
        progress=services.export_job_progress(job=job),
    )
    return TemplateResponse(request, "exports/job.html", context)


@require_GET
def job_status(request, pk):
    job = _job_or_404(request, pk)
    return JsonResponse(services.export_job_progress(job=job))


@require_POST
def job_cancel(request, pk):
    job = _job_or_404(request, pk)
    if services.export_job_cancel(job_id=job.pk, user=request.user):
        messages.success(request, _("The export was cancelled and its partial file removed."))
    else:
        messages.warning(request, _("The export had already ended."))
    return redirect("exports:job", pk=job.pk)


@require_GET
def job_download(request, pk):
    try:
        job, path = services.export_job_file(job_id=pk, user=request.user)
    except ExportJob.DoesNotExist:
        raise Http404 from None
    except ValidationError as error:
        return HttpResponseBadRequest(" ".join(_messages(error)))
    return FileResponse(path.open("rb"), as_attachment=True, filename=job.download_name, content_type=job.content_type)
