"""The invoice email as built (never sent here): subject, bodies, attachment, escaping."""

from __future__ import annotations

from decimal import Decimal

from billing.document import PartyBlock
from billing.emails import build_invoice_email
from tests.billing.test_pdf import make_document

PDF = b"%PDF-1.4 fake invoice bytes"


def _build(doc=None, **kwargs):
    return build_invoice_email(
        doc=doc or make_document(),
        pdf=PDF,
        to=kwargs.pop("to", ["finance@customer.example"]),
        from_email="billing@acme.example",
        **kwargs,
    )


def _html(message) -> str:
    [(content, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return content


def test_subject_names_number_seller_and_total():
    assert _build().subject == "Invoice INV-2026-00042 from Acme Proxies Ltd. — USD 191.87"


def test_subject_of_a_draft_and_of_jpy():
    draft = make_document(number=None, status="draft")
    jpy = make_document(currency="JPY", total=Decimal("13581"))

    assert _build(draft).subject == "Draft invoice from Acme Proxies Ltd. — USD 191.87"
    assert _build(jpy).subject.endswith("— JPY 13,581")


def test_seller_name_with_newline_cannot_inject_headers():
    doc = make_document(seller=PartyBlock(name="Acme\nBcc: victim@example.com"))

    message = _build(doc)

    assert "\n" not in message.subject
    assert message.message()["Bcc"] is None


def test_recipients_sender_and_reply_to():
    message = _build(
        to=["a@customer.example", "b@customer.example"], reply_to=["support@acme.example"]
    )

    assert message.to == ["a@customer.example", "b@customer.example"]
    assert message.from_email == "billing@acme.example"
    assert message.reply_to == ["support@acme.example"]
    assert _build().reply_to == []


def test_text_and_html_bodies_carry_number_period_and_total():
    message = _build()
    html = _html(message)

    for body in (message.body, html):
        assert "INV-2026-00042" in body
        assert "USD 191.87" in body
        assert "USD 14.62" in body
        assert "Tax (8.25%)" in body
        assert "1 Oct 2026 – 31 Oct 2026" in body
        assert "17 Nov 2026" in body
        assert "Bank transfer to HSBC HK 123-456789-001." in body
        assert "1 GB = 1,073,741,824 bytes" in body
        assert "上海流量科技有限公司" in body


def test_pdf_is_attached_under_the_invoice_number():
    [(name, content, mimetype)] = _build().attachments

    assert name == "INV-2026-00042.pdf"
    assert content == PDF
    assert mimetype == "application/pdf"


def test_draft_attachment_is_named_after_the_period():
    [(name, _content, _mimetype)] = _build(make_document(number=None, status="draft")).attachments

    assert name == "draft-2026-10.pdf"


def test_html_escapes_customer_names_and_text_keeps_them_verbatim():
    doc = make_document(buyer=PartyBlock(name='<script>alert("x")</script> & Co'))

    message = _build(doc)
    html = _html(message)

    assert "<script>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in html
    assert '<script>alert("x")</script> & Co' in message.body


def test_html_loads_nothing_from_outside():
    html = _html(_build())

    assert "<img" not in html
    assert "<link" not in html
    assert "http://" not in html
    assert "https://" not in html


def test_message_serialises_with_all_three_parts():
    raw = _build().message().as_bytes()

    assert b"Content-Type: text/plain" in raw
    assert b"Content-Type: text/html" in raw
    assert b'filename="INV-2026-00042.pdf"' in raw
