"""Stored PDFs are whole or absent: a store cut halfway leaves no truncated file under the
invoice's or credit note's name, and the next store takes that very name."""

from __future__ import annotations

import pytest
from django.core.files.base import File

from billing.credit_notes import delivery as credit_note_delivery
from billing.credit_notes.delivery import credit_note_pdf_store
from billing.credit_notes.models import CreditNote
from billing.credit_notes.services import credit_note_create
from billing.invoicing import delivery as invoice_delivery
from billing.invoicing.delivery import invoice_pdf_store
from tests.billing.test_credit_notes import NOW, make_issued_invoice


class _CutHalfway(File):
    """The rendered PDF, delivered in two chunks, the second never (the worker died)."""

    def __init__(self, data: bytes):
        super().__init__(None, name="cut.pdf")
        self.data, self.size = data, len(data)

    def chunks(self, chunk_size=None):
        yield self.data[: len(self.data) // 2]
        raise SystemExit("worker killed")  # not an Exception: nothing may catch it


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def test_an_invoice_pdf_cut_halfway_leaves_no_file_and_the_next_store_takes_its_name(
    customer, tmp_path, monkeypatch
):
    invoice = make_issued_invoice(customer)
    monkeypatch.setattr(invoice_delivery, "ContentFile", _CutHalfway)

    with pytest.raises(SystemExit):
        invoice_pdf_store(invoice=invoice, now=NOW)

    assert _files(tmp_path) == []
    invoice.refresh_from_db()
    assert not invoice.pdf
    monkeypatch.undo()
    stored = invoice_pdf_store(invoice=invoice, now=NOW)
    name = f"invoices/{customer.reseller.slug}/{invoice.number}.pdf"
    assert stored.pdf.name == name and _files(tmp_path) == [name]
    with stored.pdf.open("rb") as fh:
        assert fh.read() == invoice_delivery.invoice_pdf_render(invoice=invoice)


def test_a_credit_note_pdf_cut_halfway_leaves_no_file_and_the_next_store_takes_its_name(
    customer, tmp_path, monkeypatch
):
    note = credit_note_create(invoice=make_issued_invoice(customer), amount="60.00", now=NOW)
    name = f"credit_notes/{customer.reseller.slug}/{note.number}.pdf"
    (tmp_path / name).unlink()  # as if its first store had never happened
    CreditNote.objects.filter(pk=note.pk).update(pdf="", pdf_rendered_at=None)
    note = CreditNote.objects.get(pk=note.pk)
    monkeypatch.setattr(credit_note_delivery, "ContentFile", _CutHalfway)

    with pytest.raises(SystemExit):
        credit_note_pdf_store(credit_note=note, now=NOW)

    assert _files(tmp_path / "credit_notes") == []
    monkeypatch.undo()
    stored = credit_note_pdf_store(credit_note=note, now=NOW)
    assert stored.pdf.name == name
    assert _files(tmp_path / "credit_notes") == [f"{customer.reseller.slug}/{note.number}.pdf"]
