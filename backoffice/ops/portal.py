"""What operations add to the portal (collected by backoffice.extension_point): the workers and Flower pages,
the task, worker, queue and beat panels, and the dashboard's reader of every app's stored panel figures."""

from django.utils.translation import gettext_lazy as _

from backoffice.extension_point import Page, Panel, Urls

URLS = [Urls("ops/", "backoffice.ops.urls")]  # outside admin/: nginx routes /ops/flower/ (deploy/nginx.conf)
PAGES = [
    Page("ops:workers", _("Workers"), "portal_ops.view_ops", position=20),
    Page("ops:flower", _("Flower"), "portal_ops.view_ops", position=30),
]
PANELS = [
    Panel(
        key="tasks",
        title=_("Tasks, last 24 hours"),
        permission="django_celery_results.view_taskresult",
        template="ops/panels/tasks.html",
        compute="backoffice.ops.selectors.panel_tasks",
        shape="backoffice.ops.dashboard.tasks_panel_shape",
        position=40,
    ),
    Panel(
        key="workers",
        title=_("Workers"),
        permission="portal_ops.view_ops",
        template="ops/panels/workers.html",
        compute="backoffice.ops.selectors.panel_workers",
        position=50,
    ),
    Panel(
        key="queues",
        title=_("Queues"),
        permission="portal_ops.view_ops",
        template="ops/panels/queues.html",
        compute="backoffice.ops.selectors.panel_queues",
        position=60,
    ),
    Panel(
        key="beat",
        title=_("Beat"),
        permission="django_celery_beat.view_periodictask",
        template="ops/panels/beat.html",
        compute="backoffice.ops.selectors.panel_beat",
        shape="backoffice.ops.dashboard.beat_panel_shape",
        position=70,
    ),
]
DASHBOARD = "backoffice.ops.dashboard.dashboard_panels"
