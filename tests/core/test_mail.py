"""The embedded email backend writes one `.eml` file per message, attachment included."""

import email
from email import policy

from django.core.mail import EmailMessage

from core.mail import EmlFileBackend


def test_each_message_is_its_own_eml_file_with_its_attachment(tmp_path):
    backend = EmlFileBackend(file_path=str(tmp_path / "mail"))
    first = EmailMessage("Invoice DEMO-2026-00001", "Body", "billing@x.test", ["a@x.test"])
    first.attach("DEMO-2026-00001.pdf", b"%PDF-1.4 fake", "application/pdf")
    second = EmailMessage("Invoice DEMO-2026-00002", "Body", "billing@x.test", ["b@x.test"])
    nobody = EmailMessage("No recipients", "Body", "billing@x.test", [])

    assert backend.send_messages([first, second, nobody]) == 2

    files = sorted((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 2
    parsed = [email.message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]
    assert sorted(m["Subject"] for m in parsed) == [
        "Invoice DEMO-2026-00001",
        "Invoice DEMO-2026-00002",
    ]
    with_pdf = next(m for m in parsed if m["To"] == "a@x.test")
    (attachment,) = list(with_pdf.iter_attachments())
    assert attachment.get_filename() == "DEMO-2026-00001.pdf"
    assert attachment.get_content() == b"%PDF-1.4 fake"
