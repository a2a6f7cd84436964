"""The task console: admin pages (mounted at admin/console/), thin over console services and selectors."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backoffice.accounts.decorators import staff_permission_required
from backoffice.console import selectors, services
from backoffice.console.forms import RunTaskForm
from backoffice.task_registry import staff_tasks

VIEW = "portal_console.view_taskrun"
RUN = "portal_console.run_task"
REVOKE = "portal_console.revoke_task"


def _page(request, template: str, title: str, **context):
    return render(request, template, {**admin.site.each_context(request), "title": title, **context})


@require_GET
def index(request):
    """Guarded by its page declaration in portal.py (VIEW), which also puts it in the navigation."""
    return _page(
        request,
        "console/index.html",
        _("Task console"),
        tasks=selectors.task_infos(),
        can_run=request.user.has_perm(RUN),
        recent_runs=selectors.runs_recent(),
    )


@require_http_methods(["GET", "POST"])
@staff_permission_required(VIEW)
def task(request, name: str):
    found = staff_tasks().get(name)
    if found is None:  # unknown, or internal: neither is offered to staff
        raise Http404(_("No task that staff may run is called %(name)s.") % {"name": name})
    can_run = request.user.has_perm(RUN)
    form = RunTaskForm(request.POST or None, task_name=name)
    if request.method == "POST":
        if not can_run:
            raise PermissionDenied
        if form.is_valid():
            try:
                run = services.task_run(
                    user=request.user,
                    task_name=name,
                    args=form.cleaned_data["args"],
                    kwargs=form.cleaned_data["kwargs"],
                    **form.schedule(),
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, _("%(task)s submitted.") % {"task": name})
                return redirect("console:run", task_id=run.task_id)
    return _page(request, "console/task.html", name, info=selectors.task_info(name, found), form=form, can_run=can_run)


@require_GET
@staff_permission_required(VIEW)
def run(request, task_id: str):
    return _page(
        request,
        "console/run.html",
        _("Task %(id)s") % {"id": task_id},
        task_id=task_id,
        run=selectors.run_of(task_id),
        state=selectors.task_state(task_id),
        status_url=reverse("console:run_status", kwargs={"task_id": task_id}),
        can_revoke=request.user.has_perm(REVOKE),
    )


@never_cache
@require_GET
@staff_permission_required(VIEW)
def run_status(request, task_id: str):
    return JsonResponse(selectors.task_state(task_id))


@require_POST
@staff_permission_required(REVOKE)
def revoke(request, task_id: str):
    terminate = request.POST.get("terminate") == "1"
    try:
        services.task_revoke(user=request.user, task_id=task_id, terminate=terminate)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Terminate sent.") if terminate else _("Revoke sent."))
    return redirect("console:run", task_id=task_id)
