"""Credit note admin: issue from the invoice (`add/?invoice=<id>`), read-only pages, PDF,
resend, and scoping (another reseller's invoice or note is a 404)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse

from billing.credit_notes.models import CreditNote, CreditNoteEmail
from billing.credit_notes.services import credit_note_create
from billing.money import format_money

NOW = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


def _issue_url(invoice) -> str:
    return reverse("admin:billing_creditnote_add") + f"?invoice={invoice.pk}"


@pytest.fixture
def staff(client, alpha):
    client.force_login(alpha.staff)
    return alpha


def test_issue_page_shows_the_invoice_and_what_is_left(client, staff):
    invoice = staff.invoices["acme"]
    credit_note_create(invoice=invoice, amount=Decimal("10.00"), now=NOW, send_email=False)
    response = client.get(_issue_url(invoice))
    assert response.status_code == 200
    text = response.content.decode()
    assert invoice.number in text
    assert format_money(invoice.total - Decimal("10.00"), invoice.currency) in text
    assert 'name="amount"' in text and 'name="reason"' in text and 'name="memo"' in text


def test_issuing_a_partial_credit_from_the_admin(client, staff, django_capture_on_commit_callbacks):
    invoice = staff.invoices["acme"]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            _issue_url(invoice),
            {"amount": "12.50", "reason": "order_change", "memo": "Goodwill", "send_email": "on"},
            follow=True,
        )
    note = CreditNote.objects.get()
    assert (note.invoice_id, note.total, note.reason, note.memo) == (
        invoice.pk,
        Decimal("12.50"),
        "order_change",
        "Goodwill",
    )
    assert note.created_by == staff.staff.username
    assert response.redirect_chain[-1][0] == reverse(
        "admin:billing_creditnote_change", args=[note.pk]
    )
    messages = [str(m) for m in response.context["messages"]]
    assert messages == [f"Credit note {note.number} issued: $12.50 on {invoice.number}."]
    assert len(mail.outbox) == 1 and note.number in mail.outbox[0].subject


def test_empty_amount_credits_everything_left(client, staff):
    invoice = staff.invoices["beta"]  # paid
    client.post(_issue_url(invoice), {"amount": "", "reason": "", "memo": ""})
    assert CreditNote.objects.get().total == invoice.total


def test_refusals_show_on_the_form(client, staff):
    invoice = staff.invoices["acme"]
    too_much = client.post(_issue_url(invoice), {"amount": str(invoice.total + 1)})
    assert too_much.status_code == 200
    assert "left to credit" in too_much.content.decode()
    draft = client.post(_issue_url(staff.invoices["delta"]), {"amount": "1.00"})
    assert "only finalized or paid invoices" in draft.content.decode()
    assert not CreditNote.objects.exists()


@pytest.mark.slow
def test_another_resellers_invoice_or_note_is_404(client, staff, bravo):
    foreign_invoice = bravo.invoices["acme"]
    assert client.get(_issue_url(foreign_invoice)).status_code == 404
    assert client.post(_issue_url(foreign_invoice), {"amount": "1.00"}).status_code == 404
    assert client.get(reverse("admin:billing_creditnote_add") + "?invoice=x").status_code == 404
    foreign = credit_note_create(invoice=foreign_invoice, amount=Decimal(1), now=NOW)
    assert (
        client.get(reverse("admin:billing_creditnote_change", args=[foreign.pk])).status_code == 404
    )
    action = reverse("admin:billing_creditnote_action", args=[foreign.pk, "download_pdf"])
    assert client.post(action).status_code == 404
    mine = credit_note_create(invoice=staff.invoices["acme"], amount=Decimal(1), now=NOW)
    listing = client.get(reverse("admin:billing_creditnote_changelist")).content.decode()
    assert mine.number in listing and foreign.number not in listing
    assert not CreditNoteEmail.objects.filter(credit_note=foreign, requested_by__gt="").exists()


def test_change_page_is_read_only_and_cannot_delete(client, staff):
    note = credit_note_create(invoice=staff.invoices["acme"], amount=Decimal("5.00"), now=NOW)
    url = reverse("admin:billing_creditnote_change", args=[note.pk])
    page = client.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert note.number in text and 'name="_save"' not in text
    assert client.post(url, {}).status_code in (200, 302)
    assert CreditNote.objects.get(pk=note.pk).total == Decimal("5.00")
    delete = reverse("admin:billing_creditnote_delete", args=[note.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert CreditNote.objects.filter(pk=note.pk).exists()


def test_download_pdf_and_resend_email(client, staff, django_capture_on_commit_callbacks):
    note = credit_note_create(
        invoice=staff.invoices["acme"], amount=Decimal("5.00"), now=NOW, send_email=False
    )
    pdf = client.post(reverse("admin:billing_creditnote_action", args=[note.pk, "download_pdf"]))
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf["Content-Disposition"] == f'attachment; filename="{note.number}.pdf"'
    assert pdf.content[:5] == b"%PDF-"
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("admin:billing_creditnote_action", args=[note.pk, "resend_email"]))
    delivery = CreditNoteEmail.objects.get(credit_note=note)
    assert (delivery.requested_by, delivery.status) == (staff.staff.username, "sent")
    assert len(mail.outbox) == 1


def test_add_without_an_invoice_points_to_the_invoices(client, staff):
    response = client.get(reverse("admin:billing_creditnote_add"))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:billing_invoice_changelist")
