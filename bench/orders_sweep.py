"""Order expiry sweeper: 100,000 overdue orders, each holding a seat, a reserved coupon and redeemed points,
expired and restored by `order_expire_overdue` batches. Set-based per batch: the claim, one UPDATE of the
statuses guarded by the transition table, the events in one statement, one UPDATE for the seats, one for the
user coupons and one for the coupons' counters, one batched refund through the ledger's append path.

Beside it, the seed's way on a sample: a loop over overdue orders that expires and restores each order on
its own (load, save, restore coupon, refund points), the stock per-row ORM pattern.

Figures: orders.sweep_100k_s, orders.sweep_per_s, orders.sweep_naive_per_s and orders.sweep_vs_naive_x (the
sweep's rate over the one-at-a-time loop's, same run), orders.sweep_parallel_100k_s (two sweepers side by
side, as two worker processes run it). The load average is printed beside them: this machine is shared.
"""

import os
import sys
import time
from datetime import timedelta
from multiprocessing import get_context

from bench.common import Timer, figure, setup

FIGURE_PREFIX = "orders"
ORDERS = int(os.environ.get("BENCH_ORDERS", 100_000))
NAIVE_SAMPLE = 1_000
USERS = 500
POINTS = 10


def build(count: int, *, tag: str) -> None:
    """`count` overdue pending orders, each with a line on a limited product (its seat taken), a reserved
    coupon and 10 redeemed points, written with INSERT ... SELECT generate_series (the benchmark is the sweep,
    not the placing). Buyers get their balance through the points engine."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from orders.models import Coupon, Product
    from points.services import points_adjust

    user_model = get_user_model()
    users = user_model.objects.bulk_create(user_model(username=f"{tag}-{i}") for i in range(USERS))
    for user in users:
        points_adjust(user_id=user.pk, amount=1_000, reason="bench balance")
    product = Product.objects.create(
        sku=f"{tag}-COURSE", name="Bench course", price=10, capacity=count, seats_taken=count
    )
    coupon = Coupon.objects.create(code=f"{tag}-SAVE", value=1, times_used=count)
    user_ids = [user.pk for user in users]
    past = timezone.now() - timedelta(minutes=1)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO orders_usercoupon (user_id, coupon_id, status, created_at) "
            "SELECT (%s::bigint[])[1 + i %% %s], %s, 'reserved', now() FROM generate_series(0, %s - 1) AS i",
            [user_ids, USERS, coupon.pk, count],
        )
        cursor.execute(
            "INSERT INTO orders_order (number, user_id, status, subtotal, discount, points_redeemed, points_value, "
            "total, user_coupon_id, phone, created_at, expires_at, cancel_reason, needs_refund) "
            "SELECT %s || lpad(row_number() OVER (ORDER BY id)::text, 9, '0'), user_id, 'pending', 10, 1, %s, "
            "0.10, 8.90, id, '', now(), %s, '', false FROM orders_usercoupon WHERE coupon_id = %s",
            [tag, POINTS, past, coupon.pk],
        )
        cursor.execute(
            "INSERT INTO orders_orderline (order_id, product_id, quantity, unit_price, holds_seats) "
            "SELECT o.id, %s, 1, 10, true FROM orders_order o JOIN orders_usercoupon uc ON uc.id = o.user_coupon_id "
            "WHERE uc.coupon_id = %s",
            [product.pk, coupon.pk],
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE orders_order; ANALYZE orders_usercoupon; ANALYZE orders_orderline")


def check(tag: str, count: int) -> None:
    from orders.models import Coupon, Order, Product, UserCoupon
    from points.models import LedgerEntry

    numbers = Order.objects.filter(number__startswith=tag)
    assert numbers.filter(status="expired").count() == count, "not every order expired"
    assert Product.objects.get(sku=f"{tag}-COURSE").seats_taken == 0
    assert Coupon.objects.get(code=f"{tag}-SAVE").times_used == 0
    assert UserCoupon.objects.filter(coupon__code=f"{tag}-SAVE", status="unused").count() == count
    assert LedgerEntry.objects.filter(kind="refund", order_number__startswith=tag).count() == count


def _sweep_until_done(_=None) -> int:
    setup()
    from orders.services import order_expire_overdue

    total = 0
    while expired := order_expire_overdue():
        total += expired
    return total


def naive(tag: str) -> None:
    """The seed's sweeper: one order at a time, check then write."""
    from django.db import transaction
    from django.db.models import F
    from django.utils import timezone

    from orders.models import Coupon, Order, Product, UserCoupon
    from points.services import points_refund

    for order in Order.objects.filter(number__startswith=tag, status="pending", expires_at__lte=timezone.now()):
        with transaction.atomic():
            order.status = "expired"
            order.expired_at = timezone.now()
            order.save(update_fields=["status", "expired_at"])
            for line in order.lines.all():
                Product.objects.filter(pk=line.product_id).update(seats_taken=F("seats_taken") - line.quantity)
            UserCoupon.objects.filter(pk=order.user_coupon_id).update(status="unused")
            Coupon.objects.filter(code=f"{tag}-SAVE").update(times_used=F("times_used") - 1)
            points_refund(
                user_id=order.user_id,
                amount=order.points_redeemed,
                idempotency_key=f"order:{order.number}:restore",
                order_number=order.number,
            )


def main() -> int:
    setup()
    from django.db import connections

    print("load average: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
    with Timer() as built:
        build(NAIVE_SAMPLE, tag="N")
    with Timer() as naive_run:
        naive("N")
    check("N", NAIVE_SAMPLE)
    figure("orders.sweep_naive_per_s", NAIVE_SAMPLE / naive_run.seconds, "orders/s")

    with Timer() as built:
        build(ORDERS, tag="S")
    print(f"built {ORDERS} overdue orders in {built.seconds:.0f} s", flush=True)
    with Timer() as sweep:
        swept = _sweep_until_done()
    assert swept == ORDERS, swept
    check("S", ORDERS)
    figure("orders.sweep_100k_s", sweep.seconds, "s")
    figure("orders.sweep_per_s", ORDERS / sweep.seconds, "orders/s")
    figure("orders.sweep_vs_naive_x", (ORDERS / sweep.seconds) / (NAIVE_SAMPLE / naive_run.seconds), "x")
    print("load average: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)

    build(ORDERS, tag="P")
    connections.close_all()
    started = time.perf_counter()
    with get_context("fork").Pool(2) as pool:
        swept = sum(pool.map(_sweep_until_done, range(2)))
    parallel = time.perf_counter() - started
    assert swept == ORDERS, swept
    check("P", ORDERS)
    figure("orders.sweep_parallel_100k_s", parallel, "s")
    figure("orders.sweep_parallel_per_s", ORDERS / parallel, "orders/s")
    print("load average: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
