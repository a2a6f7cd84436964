"""The payment provider's callback signature: `X-Signature: t=<unix>,v1=<hex>`, where v1 is
HMAC-SHA256(secret, "<t>." + raw body). Compared in constant time; a timestamp further than the tolerance
from now is refused, so a captured delivery cannot be replayed later (and a replayed event id is refused by
the unique provider event id on top)."""

import hashlib
import hmac
import time

from backoffice.errors import AppError

SIGNATURE_TOLERANCE_S = 300
MAX_BODY_BYTES = 16 * 1024  # a payment notice is a few hundred bytes


class SignatureError(AppError):
    """A callback whose signature cannot be trusted: 401 for a bad signature, 400 for a stale timestamp."""

    def __init__(self, code: str, message: str):
        super().__init__(code, message, status=401 if code == "bad_signature" else 400)


def signature_compute(*, secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(*, secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header a provider sends; used by tests, the demo and the benchmark."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={signature_compute(secret=secret, timestamp=timestamp, body=body)}"


def signature_verify(*, header: str, body: bytes, secret: str, now: float | None = None) -> int:
    """Return the signed timestamp, or raise SignatureError."""
    parts: dict[str, list[str]] = {}
    for item in (header or "").split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        raise SignatureError("bad_signature", "X-Signature needs t=<unix seconds>,v1=<hex>") from None
    expected = signature_compute(secret=secret, timestamp=timestamp, body=body)
    if not any(hmac.compare_digest(expected.encode(), candidate.encode()) for candidate in parts.get("v1", [])):
        raise SignatureError("bad_signature", "the signature does not match")
    now = time.time() if now is None else now
    if abs(now - timestamp) > SIGNATURE_TOLERANCE_S:
        raise SignatureError("stale_signature", "the signature timestamp is outside the tolerance")
    return timestamp
