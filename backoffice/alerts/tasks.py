"""Alert tasks: thin adapters. Services import these tasks at the top; each task imports its service inside
its body (one import direction, as in every app).

The delivery task carries only a notification id: recipients and message bodies stay in the notification row,
out of task arguments, results, Flower and logs.
"""

from celery import shared_task

RETRY = {"retry_backoff": 5, "retry_backoff_max": 600, "retry_jitter": True, "max_retries": 6}  # ~30 min in all


@shared_task(name="alerts.evaluate", staff_runnable=True, soft_time_limit=25, time_limit=30, ignore_result=True)
def alerts_evaluate_task() -> dict:
    """Evaluate every enabled alert rule (beat: every 30 s by default). No result row: it runs 2,880 times a day."""
    from backoffice.alerts.services import alerts_evaluate

    outcome = alerts_evaluate()
    return vars(outcome)


@shared_task(name="alerts.deliver", bind=True, **RETRY)
def alert_notification_deliver_task(self, notification_id: int) -> str:
    from backoffice.alerts.services import DeliveryRetry, alert_notification_deliver, alert_notification_fail

    try:
        return alert_notification_deliver(notification_id=int(notification_id))
    except DeliveryRetry as exc:
        if self.request.retries >= self.max_retries:
            alert_notification_fail(notification_id=int(notification_id), error=f"gave up: {exc}")
            return "failed"
        raise self.retry(exc=exc) from exc
