"""Result tasks: thin adapters over backoffice.results.services (imported inside each task)."""

from celery import shared_task


@shared_task(name="results.cleanup", staff_runnable=True)
def results_cleanup_task() -> int:
    from backoffice.results.services import results_cleanup

    return results_cleanup()
