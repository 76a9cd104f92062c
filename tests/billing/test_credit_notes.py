"""Credit notes: amounts, limits, numbering, immutability, PDF, email, concurrency."""

from __future__ import annotations

import datetime as dt
import io
import threading
from decimal import Decimal
from smtplib import SMTPServerDisconnected

import pypdf
import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.db import connection

from billing.credit_notes.amounts import NOTHING, NetTax, credit_split_gross, line_tax
from billing.credit_notes.delivery import (
    credit_note_email_resend,
    credit_note_email_send,
    credit_note_pdf_content,
    credit_notes_catch_up,
)
from billing.credit_notes.models import CreditNote, CreditNoteEmail, CreditNoteLine
from billing.credit_notes.selectors import (
    invoice_amount_credited,
    invoices_with_credit_totals,
)
from billing.credit_notes.services import credit_note_create
from billing.credit_notes.tasks import credit_note_email_send_task
from billing.invoicing.pdf_with_credits import invoice_pdf_with_credits
from billing.invoicing.voiding import invoice_void
from billing.models import Invoice, InvoiceLine, InvoiceStatus
from billing.money import quantize_money
from billing.payments.services import invoice_mark_paid
from core.errors import ApplicationError
from tests import factories

NOW = dt.datetime(2026, 11, 10, 9, 30, tzinfo=dt.UTC)
OCT = dt.date(2026, 10, 1)


def make_issued_invoice(
    customer,
    *,
    amounts=("100.00", "50.00"),
    tax_rate="20",
    currency="USD",
    status=InvoiceStatus.FINALIZED,
    period_start=OCT,
) -> Invoice:
    """An issued invoice with exact figures: by default 100.00 + 50.00 = 150.00, 20% tax 30.00,
    total 180.00."""
    reseller = customer.reseller
    rate = Decimal(tax_rate)
    subtotal = sum((Decimal(a) for a in amounts), start=Decimal(0))
    tax = quantize_money(subtotal * rate / 100, currency)
    invoice = Invoice.objects.create(
        reseller=reseller,
        customer=customer,
        period_start=period_start,
        period_end=dt.date(
            period_start.year + period_start.month // 12, period_start.month % 12 + 1, 1
        ),
        currency=currency,
        subtotal=subtotal,
        tax_rate=rate,
        tax=tax,
        total=subtotal + tax,
    )
    for position, amount in enumerate(amounts, start=1):
        InvoiceLine.objects.create(
            invoice=invoice,
            position=position,
            kind=InvoiceLine.Kind.BASE_FEE,
            description=f"Line {position}",
            amount=Decimal(amount),
        )
    n = Invoice.objects.filter(reseller=reseller).exclude(number=None).count() + 1
    invoice.status = InvoiceStatus.FINALIZED
    invoice.number = f"{reseller.invoice_prefix}-2026-{n:05d}"
    invoice.sequence_year = 2026
    invoice.sequence_number = n
    invoice.issued_on = dt.date(2026, 11, 1)
    invoice.due_on = dt.date(2026, 11, 15)
    invoice.snapshot = {
        "seller": {"name": reseller.name, "address_lines": ["1 Main St"], "email": "b@x.test"},
        "buyer": {"name": customer.name, "address_lines": [], "emails": [customer.email]},
        "timezone": "UTC",
    }
    invoice.save()
    if status == InvoiceStatus.PAID:
        invoice = invoice_mark_paid(invoice=invoice, now=NOW)
    return Invoice.objects.select_related("reseller", "customer").get(pk=invoice.pk)


def make_draft_invoice(customer) -> Invoice:
    """An August 2026 draft of 10.00 (drafts are never credited)."""
    return Invoice.objects.create(
        reseller=customer.reseller,
        customer=customer,
        period_start=dt.date(2026, 8, 1),
        period_end=dt.date(2026, 9, 1),
        currency="USD",
        total=Decimal(10),
    )


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def invoice(customer):
    return make_issued_invoice(customer)


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


# --- amounts ---------------------------------------------------------------------------------


def test_gross_and_net_split_round_half_up_once():
    invoice = NetTax(Decimal("150.00"), Decimal("30.00"))
    assert credit_split_gross(
        Decimal("60.00"), invoice=invoice, credited=NOTHING, currency="USD"
    ) == NetTax(Decimal("50.00"), Decimal("10.00"))
    split = credit_split_gross(
        Decimal("10.00"),
        invoice=NetTax(Decimal("100.00"), Decimal("8.25")),
        credited=NOTHING,
        currency="USD",
    )
    assert (split.net, split.tax, split.total) == (
        Decimal("9.24"),
        Decimal("0.76"),
        Decimal("10.00"),
    )
    assert line_tax(Decimal("0.10"), tax_rate=Decimal(25), currency="USD") == Decimal("0.03")
    yen = credit_split_gross(
        Decimal(1000),
        invoice=NetTax(Decimal(12345), Decimal(1235)),
        credited=NOTHING,
        currency="JPY",
    )
    assert (yen.net, yen.tax) == (Decimal(909), Decimal(91))


# --- issuing ---------------------------------------------------------------------------------


def test_partial_credit_of_a_gross_amount_splits_net_and_tax(invoice):
    note = credit_note_create(invoice=invoice, amount="60.00", reason="order_change", now=NOW)
    assert (note.subtotal, note.tax, note.total) == (
        Decimal("50.00"),
        Decimal("10.00"),
        Decimal("60.00"),
    )
    assert note.tax_rate == Decimal(20)
    assert note.currency == "USD" and note.customer_id == invoice.customer_id
    assert note.issued_on == dt.date(2026, 11, 10)
    (line,) = note.lines.all()
    assert line.invoice_line is None and line.total == Decimal("60.00")
    assert invoice_amount_credited(invoice=invoice) == Decimal("60.00")


def test_credit_beyond_what_is_left_is_refused(invoice):
    credit_note_create(invoice=invoice, amount="60.00", now=NOW)
    with pytest.raises(ApplicationError) as exc:
        credit_note_create(invoice=invoice, amount="120.01", now=NOW)
    assert exc.value.code == "credit_exceeds_invoice"
    assert exc.value.extra == {"remaining": "120.00", "requested": "120.01"}
    last = credit_note_create(invoice=invoice, amount="120.00", now=NOW)
    # the rest of the invoice exactly: 100.00 of subtotal and 20.00 of tax
    assert (last.subtotal, last.tax) == (Decimal("100.00"), Decimal("20.00"))
    assert invoice_amount_credited(invoice=invoice) == Decimal("180.00")
    with pytest.raises(ApplicationError) as exc:
        credit_note_create(invoice=invoice, now=NOW)
    assert exc.value.code == "credit_exceeds_invoice"
    assert CreditNote.objects.count() == 2


def test_full_credit_credits_the_remaining_subtotal_and_tax(invoice):
    credit_note_create(invoice=invoice, amount="30.00", now=NOW)  # 25.00 + 5.00
    note = credit_note_create(invoice=invoice, now=NOW, reason="duplicate")
    assert (note.subtotal, note.tax, note.total) == (
        Decimal("125.00"),
        Decimal("25.00"),
        Decimal("150.00"),
    )
    assert note.lines.get().description.startswith("Credit of the remaining amount")


def test_line_credits_are_net_with_tax_per_line_and_capped_per_line(invoice):
    first, second = invoice.lines.order_by("position")
    note = credit_note_create(
        invoice=invoice,
        lines=[{"line": first.pk, "amount": "40.00"}, {"line": second.pk, "amount": "50.00"}],
        now=NOW,
    )
    assert (note.subtotal, note.tax, note.total) == (
        Decimal("90.00"),
        Decimal("18.00"),
        Decimal("108.00"),
    )
    assert [(ln.invoice_line_id, ln.amount, ln.tax) for ln in note.lines.all()] == [
        (first.pk, Decimal("40.00"), Decimal("8.00")),
        (second.pk, Decimal("50.00"), Decimal("10.00")),
    ]
    with pytest.raises(ApplicationError) as exc:
        credit_note_create(invoice=invoice, lines=[{"line": second.pk, "amount": "0.01"}], now=NOW)
    assert exc.value.code == "credit_exceeds_line"
    assert exc.value.extra["line"] == second.pk
    rest = credit_note_create(
        invoice=invoice, lines=[{"line": first.pk, "amount": "60.00"}], now=NOW
    )
    assert rest.total == Decimal("72.00")
    assert invoice_amount_credited(invoice=invoice) == Decimal("180.00")


@pytest.mark.parametrize(
    ("kwargs", "code", "field"),
    [
        ({"amount": "0"}, "invalid_amount", "amount"),
        ({"amount": "-5"}, "invalid_amount", "amount"),
        ({"amount": "1.005"}, "invalid_amount", "amount"),
        ({"amount": "1", "lines": []}, "credit_amount_and_lines", "non_field_errors"),
        ({"lines": []}, "invalid_lines", "lines"),
        ({"lines": [{"line": 999999, "amount": "1"}]}, "invalid_lines", "lines"),
        ({"reason": "bored"}, "invalid_reason", "reason"),
    ],
)
def test_bad_input_is_refused_with_the_field_named(invoice, kwargs, code, field):
    with pytest.raises(ApplicationError) as exc:
        credit_note_create(invoice=invoice, now=NOW, **kwargs)
    assert exc.value.code == code
    assert field in exc.value.extra["fields"]
    assert not CreditNote.objects.exists()


def test_a_line_of_another_invoice_or_given_twice_is_refused(invoice, customer):
    other = make_issued_invoice(customer, period_start=dt.date(2026, 9, 1))
    foreign = other.lines.first()
    with pytest.raises(ApplicationError) as exc:
        credit_note_create(invoice=invoice, lines=[{"line": foreign.pk, "amount": "1"}], now=NOW)
    assert exc.value.code == "invalid_lines"
    mine = invoice.lines.first()
    twice = [{"line": mine.pk, "amount": "1"}, {"line": mine.pk, "amount": "1"}]
    with pytest.raises(ApplicationError) as exc:
        credit_note_create(invoice=invoice, lines=twice, now=NOW)
    assert exc.value.code == "invalid_lines"


def test_only_finalized_and_paid_invoices_are_credited(customer):
    paid = make_issued_invoice(customer, status=InvoiceStatus.PAID)
    assert credit_note_create(invoice=paid, amount="10.00", now=NOW).total == Decimal("10.00")
    voided = invoice_void(
        invoice=make_issued_invoice(customer, period_start=dt.date(2026, 9, 1)), now=NOW
    )
    draft = make_draft_invoice(customer)
    for inv, status in ((voided, "void"), (draft, "draft")):
        with pytest.raises(ApplicationError) as exc:
            credit_note_create(invoice=inv, now=NOW)
        assert exc.value.code == "invoice_not_creditable"
        assert exc.value.extra == {"status": status}


def test_jpy_credits_have_no_decimals(customer):
    invoice = make_issued_invoice(customer, amounts=("12345",), tax_rate="10", currency="JPY")
    assert invoice.total == Decimal(13580)  # 12345 + 1234.5 -> 1235 (half up)
    note = credit_note_create(invoice=invoice, amount="1000", now=NOW)
    assert (note.subtotal, note.tax) == (Decimal(909), Decimal(91))
    with pytest.raises(ApplicationError) as exc:
        credit_note_create(invoice=invoice, amount="10.5", now=NOW)
    assert exc.value.code == "invalid_amount"
    rest = credit_note_create(invoice=invoice, now=NOW)
    assert (rest.subtotal, rest.tax, rest.total) == (Decimal(11436), Decimal(1144), Decimal(12580))
    assert "JPY 12,580" in _text(credit_note_pdf_content(credit_note=rest))


def test_numbers_are_gapless_per_reseller_and_year_and_separate_from_invoices(customer):
    invoice = make_issued_invoice(customer)
    prefix = customer.reseller.invoice_prefix
    first = credit_note_create(invoice=invoice, amount="1.00", now=NOW)
    with pytest.raises(ApplicationError):
        credit_note_create(invoice=invoice, amount="500.00", now=NOW)  # refused: no number used
    second = credit_note_create(invoice=invoice, amount="1.00", now=NOW)
    next_year = credit_note_create(
        invoice=invoice, amount="1.00", now=dt.datetime(2027, 1, 2, tzinfo=dt.UTC)
    )
    assert [first.number, second.number, next_year.number] == [
        f"{prefix}-CN-2026-00001",
        f"{prefix}-CN-2026-00002",
        f"{prefix}-CN-2027-00001",
    ]
    other_customer = factories.CustomerFactory()
    other = credit_note_create(invoice=make_issued_invoice(other_customer), amount="1", now=NOW)
    assert other.number == f"{other_customer.reseller.invoice_prefix}-CN-2026-00001"
    assert invoice.number == f"{prefix}-2026-00001"  # the invoice series did not move


def test_number_year_follows_the_resellers_timezone(customer):
    reseller = customer.reseller
    reseller.timezone = "Asia/Tokyo"
    reseller.save()
    invoice = make_issued_invoice(customer)
    late = dt.datetime(2026, 12, 31, 16, 0, tzinfo=dt.UTC)  # already 1 Jan 2027 in Tokyo
    note = credit_note_create(invoice=invoice, amount="1.00", now=late)
    assert note.number.endswith("-CN-2027-00001") and note.issued_on == dt.date(2027, 1, 1)


def test_issued_credit_notes_are_immutable(invoice):
    note = credit_note_create(invoice=invoice, amount="60.00", now=NOW)
    note.total = Decimal("1.00")
    for attempt in (
        note.save,
        note.delete,
        lambda: CreditNote.objects.filter(pk=note.pk).update(total=1),
        lambda: CreditNote.objects.filter(pk=note.pk).delete(),
        lambda: note.lines.first().save(),
        lambda: CreditNoteLine.objects.filter(credit_note=note).update(amount=1),
    ):
        with pytest.raises(ApplicationError) as exc:
            attempt()
        assert exc.value.code == "credit_note_immutable"
    assert CreditNote.objects.get(pk=note.pk).total == Decimal("60.00")


def test_idempotency_key_returns_the_first_note(invoice, customer):
    first = credit_note_create(invoice=invoice, amount="60.00", idempotency_key="k-1", now=NOW)
    again = credit_note_create(invoice=invoice, amount="60.00", idempotency_key="k-1", now=NOW)
    assert again.pk == first.pk
    assert invoice_amount_credited(invoice=invoice) == Decimal("60.00")
    other = make_issued_invoice(customer, period_start=dt.date(2026, 9, 1))
    with pytest.raises(ApplicationError) as exc:
        credit_note_create(invoice=other, amount="1.00", idempotency_key="k-1", now=NOW)
    assert exc.value.code == "idempotency_key_reused"


# --- invoice totals --------------------------------------------------------------------------


def test_invoice_list_annotates_credited_and_balance_due_in_one_query(
    customer, django_assert_num_queries
):
    finalized = make_issued_invoice(customer)
    paid = make_issued_invoice(customer, period_start=dt.date(2026, 9, 1), status="paid")
    untouched = make_issued_invoice(customer, period_start=dt.date(2026, 8, 1))
    credit_note_create(invoice=finalized, amount="60.00", now=NOW)
    credit_note_create(invoice=finalized, amount="20.00", now=NOW)
    credit_note_create(invoice=paid, amount="10.00", now=NOW)
    with django_assert_num_queries(1):
        rows = {
            i.pk: (i.amount_credited, i.balance_due)
            for i in invoices_with_credit_totals(Invoice.objects.all())
        }
    assert rows == {
        finalized.pk: (Decimal("80.00"), Decimal("100.00")),
        paid.pk: (Decimal("10.00"), Decimal(0)),
        untouched.pk: (Decimal(0), Decimal("180.00")),
    }


# --- PDF -------------------------------------------------------------------------------------


def test_credit_note_pdf_shows_invoice_lines_totals_and_reason(invoice):
    first = invoice.lines.order_by("position").first()
    note = credit_note_create(
        invoice=invoice,
        lines=[{"line": first.pk, "amount": "40.00"}],
        reason="product_unsatisfactory",
        memo="Outage on 3 Oct",
        now=NOW,
    )
    assert note.pdf.name.endswith(f"{note.number}.pdf")
    text = _text(credit_note_pdf_content(credit_note=note))
    for expected in (
        "CREDIT NOTE",
        note.number,
        invoice.number,
        "Line 1",
        "40.00",
        "8.00",
        "USD 48.00",
        "Total credited",
        "Product unsatisfactory",
        "Outage on 3 Oct",
        "10 Nov 2026",
    ):
        assert expected in text, expected


def test_invoice_pdf_shows_amount_credited_and_balance_due_only_when_credited(invoice):
    assert invoice_pdf_with_credits(invoice=invoice) is None
    credit_note_create(invoice=invoice, amount="60.00", now=NOW)
    text = _text(invoice_pdf_with_credits(invoice=invoice))
    assert "Amount credited" in text and "-USD 60.00" in text
    assert "Balance due" in text and "USD 120.00" in text


# --- email -----------------------------------------------------------------------------------


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    def run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return run


def test_issuing_emails_the_customer_once_with_the_pdf(invoice, customer, on_commit):
    note = on_commit(credit_note_create, invoice=invoice, amount="60.00", memo="<b>x</b>", now=NOW)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert [*message.to, *message.cc] == customer.billing_emails
    assert message.subject == (
        f"Credit note {note.number} from {customer.reseller.name} \u2014 USD 60.00"
    )
    assert invoice.number in message.body and "USD 60.00" in message.body
    html = message.alternatives[0][0]
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    (name, pdf, mimetype) = message.attachments[0]
    assert (name, mimetype) == (f"{note.number}.pdf", "application/pdf")
    assert note.number in _text(pdf)
    delivery = CreditNoteEmail.objects.get(credit_note=note)
    assert delivery.status == "sent" and delivery.attempts == 1
    # the task delivered again (a duplicate message) sends nothing
    assert credit_note_email_send_task(delivery.pk) == "sent"
    assert len(mail.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_the_email_sent_at_commit_and_the_issuing_store_one_pdf(customer, tmp_path):
    """Without a broker the email task runs when the issuing transaction commits, before
    the issuing stores the PDF: both want it, one file is written and it is the one sent."""
    invoice = make_issued_invoice(customer)
    note = credit_note_create(invoice=invoice, amount="60.00", now=NOW)
    assert len(mail.outbox) == 1
    (_name, sent, _mimetype) = mail.outbox[0].attachments[0]
    stored = sorted(p.name for p in (tmp_path / "credit_notes").rglob("*.pdf"))
    assert stored == [f"{note.number}.pdf"]
    note.refresh_from_db()
    with note.pdf.open("rb") as fh:
        assert fh.read() == sent


def test_resend_on_purpose_sends_again(invoice, on_commit):
    note = on_commit(credit_note_create, invoice=invoice, amount="60.00", now=NOW)
    delivery = on_commit(
        credit_note_email_resend, credit_note=note, now=NOW, requested_by="ops", to=["a@b.test"]
    )
    assert delivery.sequence == 2
    assert len(mail.outbox) == 2 and mail.outbox[1].to == ["a@b.test"]


def test_failed_send_is_marked_and_retried(invoice, monkeypatch):
    note = credit_note_create(invoice=invoice, amount="60.00", now=NOW)
    delivery = CreditNoteEmail.objects.get(credit_note=note)

    def boom(self, messages):
        raise SMTPServerDisconnected("gone")

    monkeypatch.setattr(EmailBackend, "send_messages", boom)
    with pytest.raises(SMTPServerDisconnected):
        credit_note_email_send(delivery=delivery, now=NOW)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert "gone" in delivery.last_error
    monkeypatch.undo()
    assert credit_note_email_send(delivery=delivery, now=NOW).status == "sent"
    assert len(mail.outbox) == 1


# --- void ------------------------------------------------------------------------------------


def test_an_invoice_with_credit_notes_cannot_be_voided(invoice):
    credit_note_create(invoice=invoice, amount="1.00", now=NOW)
    with pytest.raises(ApplicationError) as exc:
        invoice_void(invoice=invoice, now=NOW)
    assert exc.value.code == "invoice_has_credit_notes"
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.FINALIZED


# --- PostgreSQL: concurrency -----------------------------------------------------------------


def _race(fns):
    barrier = threading.Barrier(len(fns))
    results: list = [None] * len(fns)

    def run(i, fn):
        barrier.wait()
        try:
            results[i] = fn()
        except Exception as exc:  # collected and asserted
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_partial_credits_cannot_exceed_the_invoice(customer):
    invoice = make_issued_invoice(customer, amounts=("100.00",), tax_rate="0")
    results = _race(
        [lambda: credit_note_create(invoice=invoice, amount="60.00", now=NOW, send_email=False)] * 2
    )
    notes = [r for r in results if isinstance(r, CreditNote)]
    errors = [r for r in results if isinstance(r, ApplicationError)]
    assert len(notes) == 1 and len(errors) == 1, results
    assert errors[0].code == "credit_exceeds_invoice"
    assert invoice_amount_credited(invoice=invoice) == Decimal("60.00")
    assert CreditNote.objects.get().number.endswith("-CN-2026-00001")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_credits_of_two_invoices_get_consecutive_numbers(customer):
    a = make_issued_invoice(customer)
    b = make_issued_invoice(customer, period_start=dt.date(2026, 9, 1))
    results = _race(
        [
            lambda: credit_note_create(invoice=a, amount="1.00", now=NOW, send_email=False),
            lambda: credit_note_create(invoice=b, amount="1.00", now=NOW, send_email=False),
        ]
    )
    assert all(isinstance(r, CreditNote) for r in results), results
    assert sorted(r.sequence_number for r in results) == [1, 2]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_sending_the_same_delivery_send_one_email(customer):
    invoice = make_issued_invoice(customer)
    note = credit_note_create(invoice=invoice, amount="60.00", now=NOW)
    delivery = CreditNoteEmail.objects.get(credit_note=note)
    results = _race([lambda: credit_note_email_send(delivery=delivery, now=NOW)] * 2)
    assert all(isinstance(r, CreditNoteEmail) for r in results), results
    assert len(mail.outbox) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 1)


def test_the_hourly_catch_up_renders_missing_pdfs_and_redispatches_stuck_emails(
    invoice, on_commit, monkeypatch
):
    import billing.credit_notes.services as services

    def broken(**kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(services, "credit_note_pdf_store", broken)
    note = credit_note_create(invoice=invoice, amount="60.00", now=NOW)  # task message lost
    monkeypatch.undo()
    assert not CreditNote.objects.get(pk=note.pk).pdf
    # a second note whose worker died mid-send
    other = credit_note_create(invoice=invoice, amount="1.00", now=NOW, send_email=False)
    stuck = CreditNoteEmail.objects.create(
        credit_note=other,
        recipients=["x@example.com"],
        status=CreditNoteEmail.Status.SENDING,
        attempts=1,
        queued_at=NOW,
        claimed_at=NOW,
    )
    queued = CreditNoteEmail.objects.get(credit_note=note)
    CreditNoteEmail.objects.filter(pk=queued.pk).update(dispatched_at=NOW)  # its lost message
    early = credit_notes_catch_up(reseller=invoice.reseller, now=NOW + dt.timedelta(minutes=5))
    assert early == [] and len(mail.outbox) == 0
    later = NOW + dt.timedelta(hours=1)
    dispatched = on_commit(credit_notes_catch_up, reseller=invoice.reseller, now=later)
    assert sorted(dispatched) == sorted([queued.pk, stuck.pk])
    assert CreditNote.objects.get(pk=note.pk).pdf
    assert sorted(m.to[0] for m in mail.outbox) == sorted(["x@example.com", invoice.customer.email])
    stuck.refresh_from_db()
    assert (stuck.status, stuck.attempts) == ("sent", 2)
    # nothing is sent twice by the next hour's run
    on_commit(credit_notes_catch_up, reseller=invoice.reseller, now=later + dt.timedelta(hours=1))
    assert len(mail.outbox) == 2
