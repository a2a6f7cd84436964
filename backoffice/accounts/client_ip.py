"""The client's address for the login lockout (django-axes' AXES_CLIENT_IP_CALLABLE).

Behind nginx, REMOTE_ADDR is nginx itself, so every client would share one lockout counter. The address in
X-Forwarded-For can be trusted only as far as our own proxies wrote it: each trusted proxy appends the address
it saw, so with N proxies in front the client is the N-th entry from the right. Anything further left was sent
by the client and may be forged. With no proxy configured the header is ignored altogether.
"""

import ipaddress

from django.conf import settings


def _valid(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address.strip()))
    except ValueError:
        return None


def client_ip_address(request) -> str | None:
    remote = request.META.get("REMOTE_ADDR")
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    hops = [hop for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if len(hops) < proxies:
        return remote  # a request that did not come through all our proxies: only the peer is known
    return _valid(hops[-proxies]) or remote
