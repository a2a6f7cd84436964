"""Ops tasks: thin adapters over backoffice.ops.services (imported inside each task body)."""

from celery import shared_task


@shared_task(name="ops.dashboard_refresh", staff_runnable=True)
def dashboard_refresh_task() -> dict:
    from backoffice.ops.services import dashboard_refresh

    return dashboard_refresh(due_only=True)
