"""Every state change of orders, each in its own durable transaction, one module per stage:

- `placing`: an order placed (seats, coupon, points, all or nothing);
- `payment`: the payment callback (pending -> paid once; a late payment flagged for refund);
- `expiry`: the deadline's ETA task and the sweeper (pending -> expired, then the release);
- `cancel`: cancellation and staff refunds;
- `fulfilment`: entitlements granted for paid orders, and the fulfilment sweeper;
- `grab`: the early-access grab;
- `notify`: buyer notices.

Shared by the stages: `transitions` (status moves only along orders.models.TRANSITIONS, by conditional
UPDATE, single or batch), `events` (the one writer of order events), `release` (seats, coupons and points
given back, set-based) and `common` (OrderError, publishing after commit).

Rows are locked in one order everywhere to avoid deadlocks: order -> product -> user coupon / coupon -> points
account. Import the services from here (`from orders.services import order_place`); the names below are the
package's public surface.
"""

from orders.services.cancel import order_cancel, order_mark_refunded
from orders.services.common import OrderError
from orders.services.events import event_record, events_record_many
from orders.services.expiry import EXPIRE_BATCH_SIZE, order_expire, order_expire_overdue
from orders.services.fulfilment import FULFIL_GRACE, FULFIL_SWEEP_BATCH_SIZE, order_fulfil, order_fulfil_overdue
from orders.services.grab import grab_decide, grab_request
from orders.services.notify import NOTICES, order_notify
from orders.services.payment import PaymentRejected, payment_record
from orders.services.placing import MAX_LINES, MAX_QUANTITY, LineRequest, order_place
from orders.services.release import orders_release
from orders.services.transitions import order_transition, orders_transition_many

__all__ = [
    "EXPIRE_BATCH_SIZE",
    "FULFIL_GRACE",
    "FULFIL_SWEEP_BATCH_SIZE",
    "MAX_LINES",
    "MAX_QUANTITY",
    "NOTICES",
    "LineRequest",
    "OrderError",
    "PaymentRejected",
    "event_record",
    "events_record_many",
    "grab_decide",
    "grab_request",
    "order_cancel",
    "order_expire",
    "order_expire_overdue",
    "order_fulfil",
    "order_fulfil_overdue",
    "order_mark_refunded",
    "order_notify",
    "order_place",
    "order_transition",
    "orders_release",
    "orders_transition_many",
    "payment_record",
]
