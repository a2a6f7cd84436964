"""`manage.py demo_traffic`: a few requests per second of demo customer traffic against the running portal
(`make demo` starts it beside `make run`'s processes; Ctrl-C stops it with the rest)."""

import os
import signal
import time

import httpx
from django.core.management.base import BaseCommand, CommandError

from backoffice.ops.traffic import Traffic

WAIT_FOR_WEB_S = 60  # honcho starts every process at once: wait for gunicorn before signing in


class Command(BaseCommand):
    help = "Drive demo traffic (check-ins, orders, payments) through the portal's real HTTP endpoints."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default=f"http://127.0.0.1:{os.environ.get('PORT', '8000')}")
        parser.add_argument("--rate", type=float, default=3.0, help="requests per second")
        parser.add_argument("--users", type=int, default=5, help="demo customers")
        parser.add_argument("--requests", type=int, default=0, help="stop after this many (0: run until stopped)")
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--pay-delay", type=float, default=20.0, help="a customer pays within this many seconds")

    def handle(self, *args, base_url, rate, users, requests, seed, pay_delay, **options):
        if rate <= 0 or users <= 0:
            raise CommandError("--rate and --users must be positive")
        self._wait_for_web(base_url)
        from orders.models import Product

        skus = list(Product.objects.filter(is_active=True).values_list("sku", flat=True))
        traffic = Traffic(base_url=base_url, users=users, skus=skus, seed=seed, pay_delay=(pay_delay / 10, pay_delay))
        self.stdout.write(f"demo traffic: {users} customers, {rate:g} req/s, {len(skus)} products, {base_url}")
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        sent = 0
        try:
            while not stopping and (not requests or sent < requests):
                started = time.monotonic()
                try:
                    kind, status = traffic.step()
                    self.stdout.write(f"{kind} {status}")
                except httpx.HTTPError as exc:
                    self.stderr.write(f"request failed: {exc}")
                sent += 1
                time.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))
        except KeyboardInterrupt:
            pass
        finally:
            traffic.close()
        self.stdout.write("sent: " + ", ".join(f"{key}: {count}" for key, count in sorted(traffic.sent.items())))

    def _wait_for_web(self, base_url: str) -> None:
        deadline = time.monotonic() + WAIT_FOR_WEB_S
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base_url}/admin/login/", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.5)
        raise CommandError(f"the portal did not answer at {base_url} within {WAIT_FOR_WEB_S} s")
