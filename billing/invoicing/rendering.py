"""The invoice as a document: the frozen snapshot, and `invoice_document` built from it.

`invoice_snapshot` freezes who sold to whom at finalization (names, addresses, tax ids,
emails, payment instructions, logo path, timezone, unit note, the rating terms per
subscription). `invoice_document` reads only that snapshot, the invoice's own rows and the
number of the voided invoice it replaces (fixed forever), so a finalized invoice re-renders
identically even after the customer or reseller changes.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.core.files.storage import default_storage

from accounts.models import Customer, Reseller
from billing.document import (
    LAYOUT_VERSION,
    DocumentLine,
    InvoiceDocument,
    PartyBlock,
    UsageRow,
)
from billing.models import Invoice, InvoiceLine, InvoiceUsage
from billing.rating import usage_quantity

logger = logging.getLogger(__name__)


def _seller(reseller: Reseller) -> dict[str, Any]:
    return {
        "name": reseller.name,
        "address_lines": [ln for ln in reseller.address.splitlines() if ln.strip()],
        "tax_id": reseller.tax_id,
        "email": reseller.sender_email,
    }


def _buyer(customer: Customer) -> dict[str, Any]:
    city = " ".join(p for p in (customer.postal_code, customer.city) if p)
    lines = [customer.address_line1, customer.address_line2, city, customer.country]
    return {
        "name": customer.name,
        "address_lines": [ln for ln in lines if ln],
        "tax_id": customer.tax_id,
        "email": customer.email,
        "emails": customer.billing_emails,
    }


def invoice_snapshot(
    *, customer: Customer, subscriptions: dict[str, Any], unit_notes: list[str]
) -> dict[str, Any]:
    """Everything the document needs beyond lines and usage, as JSON."""
    reseller = customer.reseller
    return {
        "seller": _seller(reseller),
        "buyer": _buyer(customer),
        "payment_instructions": reseller.payment_instructions,
        "payment_terms_days": customer.effective_payment_terms_days,
        "logo_path": reseller.logo.name if reseller.logo else "",
        "timezone": reseller.timezone,
        "unit_note": "; ".join(unit_notes),
        "subscriptions": subscriptions,
    }


def _logo_bytes(path: str) -> bytes | None:
    if not path:
        return None
    try:
        with default_storage.open(path, "rb") as fh:
            return fh.read()
    except OSError:
        logger.warning("invoice logo %s is missing; rendering without it", path)
        return None


def _party(data: dict[str, Any]) -> PartyBlock:
    return PartyBlock(
        name=data.get("name", ""),
        address_lines=tuple(data.get("address_lines", ())),
        tax_id=data.get("tax_id", ""),
        email=data.get("email", ""),
    )


def _line_detail(line: InvoiceLine) -> str:
    details = line.details or {}
    if line.kind == InvoiceLine.Kind.ADJUSTMENT:
        return (
            f"{details.get('period_start', '')}: {details.get('usage_bytes_billed', 0):,} B "
            f"billed, {details.get('usage_bytes', 0):,} B now"
        )
    if line.kind == InvoiceLine.Kind.USAGE and "usage_bytes" in details:
        return f"of {int(details['usage_bytes']):,} bytes in total"
    return ""


def usage_sort_key(row: InvoiceUsage) -> tuple:
    """One order for the usage table however the rows were loaded (same PDF bytes)."""
    return (row.sub_account_label, row.upstream_name, row.subscription_id or 0, row.sub_account_id)


def invoice_document(
    invoice: Invoice,
    *,
    lines: list[InvoiceLine] | None = None,
    usage: list[InvoiceUsage] | None = None,
) -> InvoiceDocument:
    """The renderable document of an invoice (drafts render as DRAFT, without a number)."""
    snapshot = invoice.snapshot or {}
    if lines is None:
        lines = list(invoice.lines.order_by("position"))
    if usage is None:
        usage = list(invoice.usage.all())
    usage = sorted(usage, key=usage_sort_key)
    unit_bytes = _unit_bytes(snapshot)
    return InvoiceDocument(
        layout_version=invoice.layout_version or LAYOUT_VERSION,
        number=invoice.number,
        status=str(invoice.status),  # plain str: documents cross process boundaries
        issued_on=invoice.issued_on,
        due_on=invoice.due_on,
        payment_terms_days=snapshot.get("payment_terms_days"),
        period_start=invoice.period_start,
        period_end=invoice.period_end - dt.timedelta(days=1),
        timezone=snapshot.get("timezone", "UTC"),
        currency=str(invoice.currency),
        seller=_party(snapshot.get("seller", {})),
        buyer=_party(snapshot.get("buyer", {})),
        lines=tuple(
            DocumentLine(
                kind=str(line.kind),
                description=line.description,
                amount=line.amount,
                group=line.group,
                quantity=line.quantity,
                unit=line.unit,
                unit_price=line.unit_price,
                detail=_line_detail(line),
            )
            for line in lines
        ),
        usage=tuple(
            UsageRow(
                sub_account=row.sub_account_label,
                upstream=row.upstream_name,
                bytes=row.bytes,
                gb=usage_quantity(row.bytes, unit_bytes),
            )
            for row in usage
        ),
        subtotal=invoice.subtotal,
        tax_rate=invoice.tax_rate,
        tax=invoice.tax,
        total=invoice.total,
        unit_note=snapshot.get("unit_note", f"1 GB = {unit_bytes:,} bytes"),
        payment_instructions=snapshot.get("payment_instructions", ""),
        logo=_logo_bytes(snapshot.get("logo_path", "")),
        # A void invoice's number never changes, so this re-renders identically too.
        replaces=invoice.replaces.number if invoice.replaces_id else "",
        balance_applied=invoice.balance_applied,
    )


def _unit_bytes(snapshot: dict[str, Any]) -> int:
    for frozen in snapshot.get("subscriptions", {}).values():
        return int(frozen["terms"]["unit_bytes"])
    return 1_073_741_824
