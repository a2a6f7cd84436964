"""The early-access grab: a user asks for a limited product, a task decides; the seat counter makes
over-granting impossible."""

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from orders.models import Entitlement, GrabRequest, Product
from orders.services.common import OrderError, enqueue
from orders.services.placing import seats_take
from orders.tasks import grab_decide_task


def grab_request(*, user, sku: str) -> tuple[GrabRequest, bool]:
    """Ask for a limited product; the decision is a task's. Asking again returns the first request."""
    with transaction.atomic(durable=True):
        product = Product.objects.filter(sku=sku, is_active=True, capacity__isnull=False).first()
        if product is None:
            raise OrderError("unknown_offer", _("There is no such limited offer."), status=404)
        request, created = GrabRequest.objects.get_or_create(user=user, product=product)
        if created:
            enqueue(grab_decide_task, request_id=request.pk)
    return request, created


def grab_decide(*, request_id: int) -> str:
    """Grant a seat if one is left, else refuse; the seat counter makes over-granting impossible."""
    with transaction.atomic(durable=True):
        request = GrabRequest.objects.select_for_update().get(pk=request_id)
        if request.status != GrabRequest.Status.PENDING:
            return request.status
        if seats_take(product_id=request.product_id, quantity=1):
            Entitlement.objects.create(user_id=request.user_id, product_id=request.product_id)
            request.status = GrabRequest.Status.GRANTED
        else:
            request.status = GrabRequest.Status.REFUSED
        request.decided_at = timezone.now()
        request.save(update_fields=["status", "decided_at"])
    return request.status
