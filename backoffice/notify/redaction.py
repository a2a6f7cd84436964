"""How personal data in notifications is shown wherever it is kept: task events (Flower), stored results and
logs see a masked phone number or address and the length of a message, never the message.

Celery publishes `argsrepr`/`kwargsrepr` beside the real arguments; Flower's task events and the result
backend (result_extended) keep those, so masking them at publish time keeps the data out of both.
"""

REDACTED = "[redacted]"


def mask_phone(phone: str) -> str:
    """+15551234567 -> +15*******67: enough to tell two numbers apart, not enough to call one."""
    phone = str(phone or "")
    if len(phone) <= 5:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 5) + phone[-2:]


def mask_email(address: str) -> str:
    """jane.doe@example.com -> j***@example.com."""
    local, at, domain = str(address or "").partition("@")
    return f"{local[:1]}***{at}{domain}" if at else "***"


def mask_text(text: str) -> str:
    """A message or body: only its length."""
    return f"{REDACTED} {len(str(text or ''))} chars"


# How each keyword argument of a notification task is shown; arguments not listed are shown as they are.
MASKS = {"phone": mask_phone, "to": mask_email, "message": mask_text, "body": mask_text}


def redact_kwargs(kwargs: dict) -> dict:
    return {key: MASKS[key](value) if key in MASKS else value for key, value in (kwargs or {}).items()}


def redact_args(args) -> tuple:
    """Positional arguments cannot be told apart by name: all of them are hidden."""
    return tuple(REDACTED for _ in args or ())
