"""Files are whole under their final name or not there: `core.files` and its two users, the
default storage (invoice and credit-note PDFs, logos) and the embedded email backend.

A kill mid-write is simulated three ways: by looking at the directory from inside the write
(what a kill at that instant leaves), by content that fails halfway, and in a subprocess
whose file-size limit (RLIMIT_FSIZE) makes the write itself fail halfway, as a full disk
would: that one needs no patch, so it holds the old in-place code to the same test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.core.files.base import ContentFile, File
from django.core.files.storage import storages
from django.core.mail import EmailMessage

from billing.credit_notes.models import CreditNote
from billing.models import Invoice
from core.files import AtomicFileSystemStorage, file_write_atomic
from core.mail import EmlFileBackend

ROOT = Path(__file__).resolve().parents[2]
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4096 + b"\n%%EOF\n"  # 1 MiB and a bit


def _files(directory: Path) -> list[str]:
    """Every file under `directory`, hidden temporary ones included, relative names."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


class _Chunks(File):
    """Content delivered in 64 KiB chunks; calls `during(done)` after each one written."""

    def __init__(self, data: bytes, during):
        super().__init__(None, name="x.pdf")
        self.data, self.during = data, during
        self.size = len(data)

    def chunks(self, chunk_size=None):
        step = 64 * 1024
        for start in range(0, len(self.data), step):
            yield self.data[start : start + step]
            self.during(start + step)


def test_the_default_storage_and_both_pdf_fields_write_atomically():
    assert isinstance(storages["default"], AtomicFileSystemStorage)
    assert isinstance(Invoice._meta.get_field("pdf").storage, AtomicFileSystemStorage)
    assert isinstance(CreditNote._meta.get_field("pdf").storage, AtomicFileSystemStorage)


def test_a_saved_file_has_exactly_the_bytes_given_and_no_temporary_file_remains(tmp_path):
    storage = AtomicFileSystemStorage(location=tmp_path)

    name = storage.save("invoices/acme/ACME-2026-00001.pdf", ContentFile(PDF))

    assert name == "invoices/acme/ACME-2026-00001.pdf"
    assert (tmp_path / name).read_bytes() == PDF
    assert _files(tmp_path) == [name]
    assert oct((tmp_path / name).stat().st_mode & 0o777) == oct(0o644)  # FILE_UPLOAD_PERMISSIONS


def test_a_taken_name_gets_another_name_and_the_first_file_is_untouched(tmp_path):
    """Django's semantics are kept: two writers of one name never replace each other's
    file (the credit note's losing writer deletes its own file and takes the stored one)."""
    storage = AtomicFileSystemStorage(location=tmp_path)
    first = storage.save("credit_notes/acme/CN-1.pdf", ContentFile(b"first"))

    second = storage.save("credit_notes/acme/CN-1.pdf", ContentFile(b"second"))

    assert first == "credit_notes/acme/CN-1.pdf" and second != first
    assert second.startswith("credit_notes/acme/CN-1_") and second.endswith(".pdf")
    assert (tmp_path / first).read_bytes() == b"first"
    assert (tmp_path / second).read_bytes() == b"second"
    assert _files(tmp_path) == sorted([first, second])


def test_with_overwrite_allowed_the_old_file_is_replaced_whole(tmp_path):
    storage = AtomicFileSystemStorage(location=tmp_path, allow_overwrite=True)
    storage.save("logos/a.png", ContentFile(b"old" * 1000))

    assert storage.save("logos/a.png", ContentFile(b"new")) == "logos/a.png"
    assert (tmp_path / "logos/a.png").read_bytes() == b"new"
    assert _files(tmp_path) == ["logos/a.png"]


def test_while_a_pdf_is_being_written_nothing_is_under_its_final_name(tmp_path):
    """What a worker killed mid-write leaves: seen from inside the write, after every chunk."""
    storage = AtomicFileSystemStorage(location=tmp_path)
    final = tmp_path / "invoices/acme/ACME-2026-00002.pdf"
    seen = []

    def during(done):
        seen.append(final.exists())

    name = storage.save("invoices/acme/ACME-2026-00002.pdf", _Chunks(PDF, during))

    assert len(seen) == 17 and not any(seen)
    assert final.read_bytes() == PDF and _files(tmp_path) == [name]


def test_a_write_failing_halfway_leaves_no_file_at_all(tmp_path):
    storage = AtomicFileSystemStorage(location=tmp_path)

    def fail_halfway(done):
        if done >= len(PDF) // 2:
            raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space left"):
        storage.save("invoices/acme/ACME-2026-00003.pdf", _Chunks(PDF, fail_halfway))

    assert _files(tmp_path) == []
    # The name is still free: the next attempt gets it, not an alternative.
    assert storage.save("invoices/acme/ACME-2026-00003.pdf", ContentFile(PDF)) == (
        "invoices/acme/ACME-2026-00003.pdf"
    )


def test_file_write_atomic_refuses_a_taken_name_unless_told_to_replace(tmp_path):
    target = tmp_path / "a.eml"
    file_write_atomic(target, [b"one"])

    with pytest.raises(FileExistsError):
        file_write_atomic(target, [b"two"])
    assert target.read_bytes() == b"one"

    file_write_atomic(target, ["thr", "ee"], overwrite=True)
    assert target.read_bytes() == b"three"
    assert _files(tmp_path) == ["a.eml"]


def test_an_eml_file_holds_exactly_the_message_bytes(tmp_path):
    message = EmailMessage(
        "Invoice ACME-2026-00001",
        "Body",
        "billing@x.test",
        ["a@x.test"],
        headers={"Date": "Tue, 03 Nov 2026 09:00:00 +0000", "Message-ID": "<1@x.test>"},
    )
    expected = message.message().as_bytes(linesep="\n")

    assert EmlFileBackend(file_path=str(tmp_path)).send_messages([message]) == 1

    (written,) = tmp_path.iterdir()
    assert written.suffix == ".eml" and written.read_bytes() == expected


def test_an_eml_write_failing_halfway_leaves_no_file(tmp_path, monkeypatch):
    import core.files

    def fsync_fails(fd):
        raise OSError("I/O error")

    monkeypatch.setattr(core.files.os, "fsync", fsync_fails)
    message = EmailMessage("Invoice", "Body", "billing@x.test", ["a@x.test"])

    with pytest.raises(OSError, match="I/O error"):
        EmlFileBackend(file_path=str(tmp_path)).send_messages([message])
    assert _files(tmp_path) == []


# A write cut by the operating system halfway (file-size limit), in a child process: the
# same test for the old in-place writes and the new ones, nothing patched.
_CHILD = textwrap.dedent(
    """
    import os, resource, signal, sys
    import django
    django.setup()
    from django.core.files.base import ContentFile
    from django.core.files.storage import storages
    from django.core.mail import EmailMessage
    from core.mail import EmlFileBackend

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, resource.RLIM_INFINITY))
    media, mail = sys.argv[1], sys.argv[2]
    data = b"%PDF-1.4" + os.urandom(1024 * 1024)
    storage = storages.create_storage({"BACKEND": storages.backends["default"]["BACKEND"],
                                       "OPTIONS": {"location": media}})
    try:
        storage.save("invoices/acme/ACME-2026-00009.pdf", ContentFile(data))
    except OSError as exc:
        print("pdf", exc.errno)
    message = EmailMessage("Invoice", "Body", "b@x.test", ["a@x.test"])
    message.attach("ACME-2026-00009.pdf", data, "application/pdf")
    try:
        EmlFileBackend(file_path=mail).send_messages([message])
    except OSError as exc:
        print("eml", exc.errno)
    """
)


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform != "linux", reason="RLIMIT_FSIZE")
@pytest.mark.slow
def test_a_write_the_system_cuts_halfway_leaves_no_truncated_pdf_or_eml(tmp_path):
    media, mail = tmp_path / "media", tmp_path / "mail"
    media.mkdir()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}

    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(media), str(mail)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["pdf", "27", "eml", "27"]  # EFBIG, both
    assert _files(media) == [] and _files(mail) == []
