"""An email backend for tests with real worker processes: each message becomes a JSON file in the directory
named by ALERTS_TEST_MAILDIR, which the test reads (Django's locmem outbox lives in the worker's memory)."""

import json
import os
import uuid
from pathlib import Path

from django.core.mail.backends.base import BaseEmailBackend


class FileMailbox(BaseEmailBackend):
    def send_messages(self, email_messages):
        folder = Path(os.environ["ALERTS_TEST_MAILDIR"])
        for message in email_messages:
            record = {"to": message.to, "subject": message.subject, "body": message.body}
            part = folder / f".{uuid.uuid4().hex}.tmp"
            part.write_text(json.dumps(record))
            part.rename(folder / f"{uuid.uuid4().hex}.json")  # readers never see half a message
        return len(email_messages)


def read(folder: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]
