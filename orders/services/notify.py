"""Notices to the buyer (email and/or SMS) when an order is paid or expired, queued as tasks with retries."""

from django.utils.translation import gettext_lazy

from backoffice.notify.services import email_queue, sms_queue
from orders.models import Order

NOTICES = {
    "paid": (
        gettext_lazy("Order %(number)s is paid"),
        gettext_lazy("Thank you: order %(number)s (%(total)s) is paid and your purchase is ready."),
    ),
    "expired": (
        gettext_lazy("Order %(number)s has expired"),
        gettext_lazy(
            "Order %(number)s was not paid in time and has expired; the points and coupon it used are yours again."
        ),
    ),
}


def order_notify(*, order_ids: list[int], event: str) -> int:
    """Queue an email and/or SMS per order (whichever contact the buyer gave); returns how many."""
    subject, body = NOTICES[event]
    queued = 0
    for order in Order.objects.filter(pk__in=order_ids).select_related("user").order_by("id"):
        values = {"number": order.number, "total": order.total}
        if order.user.email:
            email_queue(to=order.user.email, subject=str(subject) % values, body=str(body) % values)
            queued += 1
        if order.phone:
            sms_queue(phone=order.phone, message=str(body) % values)
            queued += 1
    return queued
