"""An email backend for tests with real worker processes: each message becomes a JSON file in the directory
named by ALERTS_TEST_MAILDIR, which the test reads (Django's locmem outbox lives in the worker's memory)."""

import json
import os
import time
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
            # Named by the time sent, so a reader gets them in order; renamed, so it never sees half a message.
            part.rename(folder / f"{time.time_ns():020d}-{uuid.uuid4().hex}.json")
        return len(email_messages)


def read(folder: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]
