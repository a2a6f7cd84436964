"""Export tasks: thin adapters. Services import these tasks at the top; each task imports its service
inside the function body, so the import direction is one way."""

from celery import shared_task

from backoffice.retries import EMAIL_TRANSIENT_ERRORS, retry_delivery

EXPORT_TIME_LIMIT_SECONDS = 3 * 3600  # a 10M-row SQLite export takes minutes; the default 600 s is for small tasks


@shared_task(
    name="exports.run",
    time_limit=EXPORT_TIME_LIMIT_SECONDS,
    soft_time_limit=EXPORT_TIME_LIMIT_SECONDS - 60,  # the run catches it, removes the partial file, fails
)
def export_job_run_task(job_id: int) -> str:
    from backoffice.exports.services import export_job_run

    return str(export_job_run(job_id=int(job_id)))


@shared_task(name="exports.notify_ready", **retry_delivery(*EMAIL_TRANSIENT_ERRORS))
def export_job_notify_ready_task(job_id: int) -> bool:
    from backoffice.exports.services import export_job_notify_ready

    return export_job_notify_ready(job_id=int(job_id))


@shared_task(name="exports.requeue", staff_runnable=True)
def export_jobs_requeue_task() -> int:
    from backoffice.exports.services import export_jobs_requeue

    return export_jobs_requeue()


@shared_task(name="exports.expire", staff_runnable=True)
def export_jobs_expire_task() -> int:
    from backoffice.exports.services import export_jobs_expire

    return export_jobs_expire()
