"""Print a development .env with fresh random secrets: `python -m backoffice.envfile > .env`."""

import secrets

TEMPLATE = """\
# Written by `make run` on first start. Local development only: never commit this file.
SECRET_KEY={secret_key}
# Flower listens on 127.0.0.1 behind this password; only the portal's proxy knows it.
FLOWER_BASIC_AUTH=portal:{flower_password}
PAYMENT_WEBHOOK_SECRET={payment_secret}
# Uncomment to use real services instead of the embedded Redis and the SQLite file in var/:
# DATABASE_URL=postgres://user@127.0.0.1:5432/backoffice
# REDIS_URL=redis://127.0.0.1:6379/0
"""


def render() -> str:
    return TEMPLATE.format(
        secret_key=secrets.token_urlsafe(50),
        flower_password=secrets.token_urlsafe(24),
        payment_secret=secrets.token_urlsafe(32),
    )


if __name__ == "__main__":
    print(render(), end="")
