"""Demo traffic for `make demo`: demo users signed in, driving the real HTTP endpoints at a few requests per
second (check-ins, balance reads, orders placed, then paid through the signed callback or left to expire), so a
newcomer sees the dashboard, the ledgers and Flower move.

End users have no login page in this project (the business site owns sign-in), so each demo user is signed
in the way that site's login would: a real Django session created with `django.contrib.auth.login`, whose cookie
the HTTP client then carries. Everything after that is plain HTTP against the running portal, with CSRF.
"""

import json
import logging
import random
import time
from dataclasses import dataclass, field
from decimal import Decimal

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.sessions.backends.db import SessionStore
from django.http import HttpRequest

from orders.payments import signature_header

logger = logging.getLogger(__name__)

DEMO_USER_PREFIX = "demo-customer-"
PAY_SHARE = 0.7  # the rest of the orders are left to expire (the sweeper and the ETA task move them)
PAYMENT_DELAY_S = (2.0, 20.0)  # a customer pays a little after placing the order


@dataclass
class Customer:
    username: str
    client: httpx.Client
    csrf: str = ""
    pending: list[tuple[float, dict]] = field(default_factory=list)  # (pay at, order json)


def customer_sign_in(*, username: str, base_url: str) -> Customer:
    """Create the demo user if missing and give it a signed-in session, as the site's login would."""
    user, created = get_user_model().objects.get_or_create(username=username, defaults={"email": f"{username}@demo"})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    request = HttpRequest()
    request.session = SessionStore()
    request.META["REMOTE_ADDR"] = "127.0.0.1"
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    request.session.save()
    client = httpx.Client(base_url=base_url, timeout=10)
    client.cookies.set(settings.SESSION_COOKIE_NAME, request.session.session_key)
    customer = Customer(username=username, client=client)
    response = client.get("/api/points/me/")  # sets the CSRF cookie the POSTs need
    customer.csrf = client.cookies.get(settings.CSRF_COOKIE_NAME, "")
    logger.info("demo customer %s signed in (%s)", username, response.status_code)
    return customer


class Traffic:
    def __init__(
        self,
        *,
        base_url: str,
        users: int,
        skus: list[str],
        seed: int | None = None,
        pay_delay: tuple[float, float] = PAYMENT_DELAY_S,
    ):
        self.base_url = base_url.rstrip("/")
        self.pay_delay = pay_delay
        self.random = random.Random(seed)
        self.skus = list(skus)
        self.customers = [
            customer_sign_in(username=f"{DEMO_USER_PREFIX}{n}", base_url=self.base_url) for n in range(users)
        ]
        self.payments = httpx.Client(base_url=self.base_url, timeout=10)
        self.sent: dict[str, int] = {}

    def _post(self, customer: Customer, path: str, payload: dict | None = None) -> httpx.Response:
        return customer.client.post(
            path,
            content=json.dumps(payload or {}),
            headers={"X-CSRFToken": customer.csrf, "Content-Type": "application/json", "Referer": self.base_url + "/"},
        )

    def step(self) -> tuple[str, int]:
        """One request: a due payment if there is one, else a random customer action."""
        now = time.monotonic()
        for customer in self.customers:
            if customer.pending and customer.pending[0][0] <= now:
                _, order = customer.pending.pop(0)
                return self._count("pay", self._pay(order).status_code)
        customer = self.random.choice(self.customers)
        roll = self.random.random()
        if roll < 0.35:
            return self._count("checkin", self._post(customer, "/api/points/checkin/").status_code)
        if roll < 0.55 or not self.skus:
            return self._count("me", customer.client.get("/api/points/me/").status_code)
        sku = self.random.choice(self.skus)
        response = self._post(customer, "/api/orders/", {"lines": [{"sku": sku, "quantity": 1}]})
        if response.status_code == 409 and "sold_out" in response.text:
            # A shop stops offering what it sold out (seats come back only as orders expire).
            self.skus.remove(sku)
            logger.info("demo traffic: %s sold out, no more orders for it", sku)
        if response.status_code == 201 and self.random.random() < PAY_SHARE:
            customer.pending.append((now + self.random.uniform(*self.pay_delay), response.json()))
        return self._count("order", response.status_code)

    def _pay(self, order: dict) -> httpx.Response:
        body = json.dumps(
            {
                "event_id": f"demo-{order['number']}",
                "order_number": order["number"],
                "amount": str(Decimal(order["total"])),
                "status": "succeeded",
            }
        ).encode()
        header = signature_header(secret=settings.PAYMENT_WEBHOOK_SECRET, body=body)
        return self.payments.post(
            "/api/payments/callback/",
            content=body,
            headers={"X-Signature": header, "Content-Type": "application/json"},
        )

    def _count(self, kind: str, status: int) -> tuple[str, int]:
        key = f"{kind} {status}"
        self.sent[key] = self.sent.get(key, 0) + 1
        return kind, status

    def close(self) -> None:
        for customer in self.customers:
            customer.client.close()
        self.payments.close()
