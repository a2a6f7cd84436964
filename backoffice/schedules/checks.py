from django.conf import settings
from django.core import checks


@checks.register()
def worker_queues_check(app_configs, **kwargs):
    """A route or default queue outside WORKER_QUEUES sends messages no worker of this deployment reads."""
    queues = set(settings.WORKER_QUEUES)
    routed = {settings.CELERY_TASK_DEFAULT_QUEUE} | {
        route["queue"] for route in settings.CELERY_TASK_ROUTES.values() if isinstance(route, dict) and "queue" in route
    }
    return [
        checks.Error(
            f"Tasks are routed to the queue {queue!r}, which is not in WORKER_QUEUES: no worker would read them.",
            hint="Add the queue to WORKER_QUEUES and to a worker's --queues, or route the tasks elsewhere.",
            id="schedules.E001",
        )
        for queue in sorted(routed - queues)
    ]
