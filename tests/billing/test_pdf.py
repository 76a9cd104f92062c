"""The invoice PDF, checked as a reader would: through the text a PDF library extracts.

No database: documents are built here. Text is extracted with pypdf, which needs the glyphs'
Unicode mapping (ToUnicode for the embedded DejaVu subset, the UCS2 CMaps for the CID fonts),
so a name that comes back intact was written as real characters, not as boxes or images.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pypdf
import pytest
from PIL import Image as PILImage

from billing.document import (
    LAYOUT_VERSION,
    DocumentLine,
    InvoiceDocument,
    PartyBlock,
    UsageRow,
)
from billing.pdf import render_invoice_pdf

CHINESE = "上海流量科技有限公司"
JAPANESE = "東京プロキシ株式会社"
CYRILLIC = "ООО Прокси"
ACCENTED = "Société Générale Ñandú"


def make_document(**overrides) -> InvoiceDocument:
    """A finalized October 2026 invoice: 2 subscriptions, 4 lines, 4 sub-accounts, 8.25% tax."""
    lines = (
        DocumentLine(
            kind="base_fee",
            description="Monthly base fee",
            amount=Decimal("49.00"),
            group="Pro plan - IPFoxy",
            quantity=Decimal("1"),
            unit="month",
            unit_price=Decimal("49.000000"),
        ),
        DocumentLine(
            kind="usage",
            description="Traffic",
            amount=Decimal("85.00"),
            group="Pro plan - IPFoxy",
            quantity=Decimal("100"),
            unit="GB",
            unit_price=Decimal("0.850000"),
            detail="Tier 1: 0 GB - 100 GB",
        ),
        DocumentLine(
            kind="usage",
            description="Traffic",
            amount=Decimal("31.25"),
            group="Pro plan - IPFoxy",
            quantity=Decimal("50"),
            unit="GB",
            unit_price=Decimal("0.625000"),
            detail="Tier 2: 100 GB - 500 GB",
        ),
        DocumentLine(
            kind="usage",
            description="Traffic",
            amount=Decimal("12.00"),
            group="Starter plan - BytesFlows",
            quantity=Decimal("10"),
            unit="GB",
            unit_price=Decimal("1.200000"),
        ),
    )
    usage = tuple(
        UsageRow(sub_account=name, upstream=upstream, bytes=n, gb=Decimal(n) / 2**30)
        for name, upstream, n in (
            (CHINESE, "IPFoxy", 107_374_182_400),
            (JAPANESE, "IPFoxy", 53_687_091_200),
            (CYRILLIC, "BytesFlows", 10_737_418_240),
            (ACCENTED, "BytesFlows", 0),
        )
    )
    fields = {
        "layout_version": LAYOUT_VERSION,
        "number": "INV-2026-00042",
        "status": "finalized",
        "issued_on": dt.date(2026, 11, 3),
        "due_on": dt.date(2026, 11, 17),
        "period_start": dt.date(2026, 10, 1),
        "period_end": dt.date(2026, 10, 31),
        "timezone": "Asia/Shanghai",
        "currency": "USD",
        "seller": PartyBlock(
            name="Acme Proxies Ltd.",
            address_lines=("88 Queensway", "Admiralty, Hong Kong"),
            tax_id="HK-12345678",
            email="billing@acme.example",
        ),
        "buyer": PartyBlock(
            name=CHINESE,
            address_lines=("上海市浦东新区世纪大道100号", "200120 Shanghai"),
            tax_id="91310000MA1FL0000X",
        ),
        "lines": lines,
        "usage": usage,
        "subtotal": Decimal("177.25"),
        "tax_rate": Decimal("8.2500"),
        "tax": Decimal("14.62"),
        "total": Decimal("191.87"),
        "unit_note": "1 GB = 1,073,741,824 bytes",
        "payment_instructions": (
            "Bank transfer to HSBC HK 123-456789-001.\nQuote the invoice number."
        ),
    }
    fields.update(overrides)
    return InvoiceDocument(**fields)


def _reader(pdf: bytes) -> pypdf.PdfReader:
    return pypdf.PdfReader(io.BytesIO(pdf))


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in _reader(pdf).pages)


def _fonts_used_for(pdf: bytes, needle: str = "") -> set[str]:
    """The BaseFont of every run of text containing `needle` (pypdf joins same-font runs)."""
    fonts: set[str] = set()

    def visit(text, _cm, _tm, font_dict, _size):
        if font_dict is not None and text.strip() and needle in text:
            fonts.add(str(font_dict["/BaseFont"]))

    for page in _reader(pdf).pages:
        page.extract_text(visitor_text=visit)
    return fonts


def _png(width: int = 120, height: int = 40) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (width, height), (31, 58, 95)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_pdf_shows_number_dates_period_and_totals():
    text = _text(render_invoice_pdf(make_document()))

    for expected in (
        "INV-2026-00042",
        "3 Nov 2026",
        "17 Nov 2026",
        "1 Oct 2026 – 31 Oct 2026",
        "Asia/Shanghai",
        "USD 177.25",
        "Tax (8.25%)",
        "USD 14.62",
        "USD 191.87",
        "1 GB = 1,073,741,824 bytes",
        "Bank transfer to HSBC HK 123-456789-001.",
        "Quote the invoice number.",
        "Acme Proxies Ltd.",
        "Tax ID: 91310000MA1FL0000X",
    ):
        assert expected in text, expected


def test_pdf_groups_lines_by_subscription_with_tier_detail_and_prices():
    text = _text(render_invoice_pdf(make_document()))

    assert "Pro plan - IPFoxy" in text
    assert "Starter plan - BytesFlows" in text
    assert "Tier 2: 100 GB - 500 GB" in text
    assert "0.625" in text  # unit price keeps its sub-cent digits
    assert "165.25" in text  # the Pro plan group total: 49.00 + 85.00 + 31.25
    assert "31.25" in text


def test_usage_table_shows_bytes_with_separators_and_gb():
    text = _text(render_invoice_pdf(make_document()))

    assert "107,374,182,400" in text
    assert "100.000" in text
    assert "171,798,691,840" in text  # the total row
    assert "160.000" in text


def test_cjk_cyrillic_and_accented_names_come_back_as_text():
    text = _text(render_invoice_pdf(make_document()))

    for name in (CHINESE, JAPANESE, CYRILLIC, ACCENTED, "上海市浦东新区世纪大道100号"):
        assert name in text, name


def test_non_latin_names_are_not_set_in_helvetica():
    pdf = render_invoice_pdf(make_document())

    chinese = _fonts_used_for(pdf, CHINESE)
    japanese = _fonts_used_for(pdf, JAPANESE)
    cyrillic = _fonts_used_for(pdf, CYRILLIC)
    accented = _fonts_used_for(pdf, ACCENTED)

    # Embedded (a subset named "XXXXXX+DroidSansFallback"), so every viewer draws them.
    assert len(chinese) == 1 and next(iter(chinese)).endswith("+DroidSansFallback")
    assert japanese == chinese
    assert cyrillic and all("DejaVuSans" in font for font in cyrillic)
    assert accented and all("DejaVuSans" in font for font in accented)
    assert not any("Helvetica" in font for font in _fonts_used_for(pdf))


def test_same_document_renders_to_the_same_bytes():
    doc = make_document(logo=_png())

    assert render_invoice_pdf(doc) == render_invoice_pdf(doc)


@pytest.mark.slow
def test_same_bytes_in_another_process_with_another_hash_seed():
    """Set and dict order of str keys varies per process; the bytes must not. The other
    process builds every font subset afresh, this one reuses the ones it built before."""
    script = (
        "import hashlib, sys\n"
        "from tests.billing.test_pdf import make_document\n"
        "from billing.pdf import render_invoice_pdf\n"
        "sys.stdout.write(hashlib.sha256(render_invoice_pdf(make_document())).hexdigest())\n"
    )
    root = Path(__file__).resolve().parents[2]
    other = subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    render_invoice_pdf(make_document())  # this process now reuses the fonts' subsets
    assert other == hashlib.sha256(render_invoice_pdf(make_document())).hexdigest()


def test_jpy_amounts_have_no_decimals():
    doc = make_document(
        currency="JPY",
        lines=(
            DocumentLine(
                kind="usage",
                description="Traffic",
                amount=Decimal("12346"),
                group="Tokyo plan",
                quantity=Decimal("150"),
                unit="GB",
                unit_price=Decimal("82.305000"),
            ),
        ),
        subtotal=Decimal("12346"),
        tax_rate=Decimal("10"),
        tax=Decimal("1235"),
        total=Decimal("13581"),
    )

    text = _text(render_invoice_pdf(doc))

    assert "JPY 12,346" in text
    assert "JPY 1,235" in text
    assert "JPY 13,581" in text
    assert "Tax (10%)" in text
    assert "82.305" in text
    assert "12,346.00" not in text
    assert "13,581.00" not in text


def test_draft_shows_draft_instead_of_a_number():
    text = _text(render_invoice_pdf(make_document(number=None, status="draft", issued_on=None)))

    assert "DRAFT" in text
    assert "INV-" not in text


def test_void_and_paid_invoices_are_marked():
    assert "VOID" in _text(render_invoice_pdf(make_document(status="void")))
    assert "PAID" in _text(render_invoice_pdf(make_document(status="paid")))


def test_logo_is_drawn_and_a_broken_logo_is_skipped():
    with_logo = _reader(render_invoice_pdf(make_document(logo=_png())))
    assert len(with_logo.pages[0].images) == 1

    for broken in (b"\x89PNG\r\n\x1a\nnot really a png", _png()[:60], b"GIF89a"):
        pdf = render_invoice_pdf(make_document(logo=broken))
        assert "INV-2026-00042" in _text(pdf)
        assert len(_reader(pdf).pages[0].images) == 0


@pytest.mark.slow
def test_long_invoice_flows_onto_pages_with_repeated_headers_and_page_numbers():
    lines = tuple(
        DocumentLine(
            kind="usage",
            description=f"Traffic line {i:03d}",
            amount=Decimal("1.00"),
            group=f"Plan {i // 50}",
            quantity=Decimal("1"),
            unit="GB",
            unit_price=Decimal("1.000000"),
            detail=f"Tier {i % 3 + 1}",
        )
        for i in range(300)
    )
    usage = tuple(
        UsageRow(sub_account=f"sub-{i:03d}", upstream="IPFoxy", bytes=2**30, gb=Decimal(1))
        for i in range(200)
    )
    doc = make_document(lines=lines, usage=usage, subtotal=Decimal("300.00"))

    pages = [page.extract_text() for page in _reader(render_invoice_pdf(doc)).pages]

    assert len(pages) >= 5
    for number, text in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in text
        if "Traffic line" in text:
            assert "Unit price (USD)" in text
        if "sub-1" in text:
            assert "Sub-account" in text
    assert "Traffic line 299" in "".join(pages)
    assert sum("Traffic line" in text for text in pages) >= 3


def test_long_descriptions_wrap_instead_of_overflowing():
    description = " ".join(["Adjustment for September 2026 usage revised by the upstream"] * 3)
    line = dataclasses.replace(make_document().lines[0], description=description)

    text = _text(render_invoice_pdf(make_document(lines=(line,))))

    assert description not in text  # broken over several lines...
    assert description in " ".join(text.split())  # ...with every word kept, in order


def test_customer_text_with_markup_characters_is_printed_literally():
    doc = make_document(buyer=PartyBlock(name="<b>Tom & Jerry</b> GmbH"))

    assert "<b>Tom & Jerry</b> GmbH" in _text(render_invoice_pdf(doc))


def test_display_formats_follow_the_currency_and_round_half_up():
    from billing.pdf import formatting as fmt

    assert fmt.amount(Decimal("1234.5"), "USD") == "1,234.50"
    assert fmt.amount(Decimal("0.125"), "USD") == "0.13"  # half up, as billed, not half even
    assert fmt.amount(Decimal("1234.5"), "JPY") == "1,235"
    assert fmt.amount(Decimal("1.2345"), "KWD") == "1.235"
    assert fmt.money(Decimal("-12.5"), "USD") == "-USD 12.50"
    assert fmt.money(Decimal("13581"), "JPY") == "JPY 13,581"
    assert fmt.unit_price(Decimal("0.850000"), "USD") == "0.85"
    assert fmt.unit_price(Decimal("0.012345"), "USD") == "0.012345"
    assert fmt.unit_price(Decimal("82.000000"), "JPY") == "82"
    assert fmt.quantity(Decimal("1.149781494140625"), "GB") == "1.150"
    assert fmt.quantity(Decimal("0.5"), "month") == "0.5"
    assert fmt.byte_count(1_073_741_824) == "1,073,741,824"
    assert fmt.percent(Decimal("8.2500")) == "8.25%"
    assert fmt.percent(Decimal("0")) == "0%"
    assert fmt.date_label(dt.date(2026, 3, 9)) == "9 Mar 2026"


def test_odd_input_still_renders():
    doc = make_document(
        seller=PartyBlock(name="Rocket 🚀 Proxies บริษัท", address_lines=("", "Line\twith tab")),
        buyer=PartyBlock(name="Ünïcödé 株式会社テスト"),
        lines=(),
        usage=(),
        subtotal=Decimal("0.00"),
        tax=Decimal("0.00"),
        total=Decimal("0.00"),
        payment_instructions="Pay at https://pay.example/" + "x" * 300,
    )

    text = _text(render_invoice_pdf(doc))

    assert "No charges in this period." in text
    assert "Ünïcödé 株式会社テスト" in text
    assert "USD 0.00" in text


def test_decomposed_accents_are_printed_precomposed():
    decomposed = "Socie\u0301te\u0301 Ge\u0301ne\u0301rale"

    text = _text(render_invoice_pdf(make_document(buyer=PartyBlock(name=decomposed))))

    assert "Société Générale" in text


# --- credits ---------------------------------------------------------------------------------


def make_credit_note(**overrides):
    from billing.credit_notes.document import CreditDocumentLine, CreditNoteDocument

    base = make_document()
    fields = {
        "number": "ACME-CN-2026-00001",
        "issued_on": dt.date(2026, 11, 10),
        "timezone": "Asia/Hong_Kong",
        "currency": "USD",
        "seller": base.seller,
        "buyer": base.buyer,
        "invoice_number": "ACME-2026-00042",
        "invoice_issued_on": dt.date(2026, 11, 1),
        "invoice_total": Decimal("191.87"),
        "reason": "Order change",
        "memo": "Two days of outage\nin October",
        "lines": (
            CreditDocumentLine(
                description="Traffic, tier 1",
                amount=Decimal("50.00"),
                tax=Decimal("4.13"),
                total=Decimal("54.13"),
            ),
        ),
        "subtotal": Decimal("50.00"),
        "tax_rate": Decimal("8.2500"),
        "tax": Decimal("4.13"),
        "total": Decimal("54.13"),
    }
    fields.update(overrides)
    return CreditNoteDocument(**fields)


def test_credit_note_pdf_text_and_same_bytes_every_time():
    from billing.pdf import render_credit_note_pdf

    doc = make_credit_note(logo=_png())
    pdf = render_credit_note_pdf(doc)
    assert pdf == render_credit_note_pdf(doc)
    text = _text(pdf)
    for expected in (
        "CREDIT NOTE",
        "ACME-CN-2026-00001",
        "ACME-2026-00042",
        "10 Nov 2026",
        "USD 191.87",
        CHINESE,
        "Traffic, tier 1",
        "54.13",
        "Tax (8.25%)",
        "Order change",
        "Two days of outage",
        "Page 1 of 1",
    ):
        assert expected in text, expected


def test_invoice_pdf_with_credit_adds_credited_and_balance_rows_only_then():
    from billing.credit_notes.document import InvoiceCredit

    doc = make_document()
    plain = render_invoice_pdf(doc)
    assert "Amount credited" not in _text(plain)
    credit = InvoiceCredit(amount_credited=Decimal("54.13"), balance_due=Decimal("137.74"))
    credited = render_invoice_pdf(doc, credit=credit)
    text = _text(credited)
    assert "Amount credited" in text and "-USD 54.13" in text
    assert "Balance due" in text and "USD 137.74" in text
    assert render_invoice_pdf(doc) == plain  # the issued rendering is unchanged


def test_layout_2_prints_the_payment_terms_and_layout_1_renders_as_before():
    terms = make_document(layout_version=2, payment_terms_days=30)
    assert "Payment terms" in _text(render_invoice_pdf(terms))
    assert "Net 30 days" in _text(render_invoice_pdf(terms))
    assert "Due on receipt" in _text(
        render_invoice_pdf(make_document(layout_version=2, payment_terms_days=0))
    )
    old = make_document(layout_version=1, payment_terms_days=30)  # issued before layout 2
    assert "Payment terms" not in _text(render_invoice_pdf(old))
