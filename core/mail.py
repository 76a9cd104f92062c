"""The embedded email backend: every message as its own `.eml` file under `var/mail/`.

Django's file backend appends all messages of a connection to one `.log` file; one
RFC 5322 file per message opens directly in any mail client, attachments included. Each
file is written under a temporary name and renamed into place (`core.files`), so a process
killed mid-write never leaves a truncated `.eml` behind.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone

from core.files import file_write_atomic


class EmlFileBackend(BaseEmailBackend):
    def __init__(self, *args, file_path: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.file_path = Path(file_path or settings.EMAIL_FILE_PATH)

    def send_messages(self, email_messages) -> int:
        self.file_path.mkdir(parents=True, exist_ok=True)
        sent = 0
        for message in email_messages:
            if not message.recipients():
                continue
            name = f"{timezone.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:12]}.eml"
            data = message.message().as_bytes(linesep="\n")
            file_write_atomic(self.file_path / name, [data])
            sent += 1
        return sent
