"""Accounting exports: one CSV row per document of a month, and totals per currency.

- invoices: every issued invoice of the period (`period_start` in the month; finalized, paid
  or void; drafts are not documents yet). Net, tax, gross, credited, paid and balance due are
  the invoice's own figures (`invoices_with_credit_totals`, the one selector of amounts due).
  Void invoices are listed with their status and left out of the totals, which are
  `billing.figures.money_for_month`'s (the dashboard's and `reseller/figures/`).
- credit notes: every credit note issued in the month (`issued_on`, reseller's timezone).
- payments: every payment received in the month (`paid_at`, reseller's timezone) and every
  refund given back in it, a refund as a negative row.

Each file ends with one `total` row per currency (never a sum across currencies). Amounts
are plain decimal strings in the currency's minor unit; dates ISO 8601. A cell that starts
with `=`, `+`, `-` or `@` and is text (a customer's name) is prefixed with `'` so a
spreadsheet never runs it as a formula (amounts are numbers and kept as they are).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from accounts.models import Reseller
from billing.credit_notes.models import CreditNote
from billing.credit_notes.selectors import invoices_with_credit_totals
from billing.figures import money_for_month
from billing.invoicing.periods import Period, local_midnight
from billing.models import Invoice, InvoiceKind, InvoiceStatus
from billing.money import quantize_money
from billing.payments.models import Payment, Refund
from core.errors import ApplicationError

KINDS = ("invoices", "credit-notes", "payments")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Export:
    kind: str
    period: Period
    header: tuple[str, ...]
    rows: list[tuple]
    #: currency -> summed amount columns (those in `summed`), for the total rows.
    totals: dict[str, dict[str, Decimal]]
    summed: tuple[str, ...]

    @property
    def filename(self) -> str:
        return f"{self.kind}-{self.period.label}.csv"


def _text(value: str) -> str:
    value = value or ""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _bounds(reseller: Reseller, period: Period) -> tuple[dt.datetime, dt.datetime]:
    tz = reseller.tzinfo
    return local_midnight(period.start, tz), local_midnight(period.end, tz)


def _total(rows: Iterable[dict], summed: Sequence[str]) -> dict[str, dict[str, Decimal]]:
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in rows:
        for column in summed:
            totals[row["currency"]][column] += row[column]
    return {currency: dict(values) for currency, values in sorted(totals.items())}


def _export(kind, period, header, records, summed) -> Export:
    totals = _total(records, summed)
    return Export(
        kind=kind,
        period=period,
        header=tuple(header),
        rows=[tuple(r[c] for c in header) for r in records],
        totals=totals,
        summed=tuple(summed),
    )


def export_invoices(*, reseller: Reseller, period: Period) -> Export:
    invoices = invoices_with_credit_totals(
        Invoice.objects.for_reseller(reseller)
        .filter(
            period_start=period.start,
            kind=InvoiceKind.PERIOD,  # top-ups are prepayments (docs/api.md, "Top-ups")
            status__in=[InvoiceStatus.FINALIZED, InvoiceStatus.PAID, InvoiceStatus.VOID],
        )
        .select_related("customer")
        .order_by("number")
    )
    records = []
    for inv in invoices:
        q = lambda amount, cur=inv.currency: quantize_money(amount, cur)  # noqa: E731
        records.append(
            {
                "number": inv.number,
                "status": inv.status,
                "customer_id": inv.customer_id,
                "customer": _text(inv.customer.name),
                "period": period.label,
                "issued_on": inv.issued_on.isoformat() if inv.issued_on else "",
                "due_on": inv.due_on.isoformat() if inv.due_on else "",
                "currency": inv.currency,
                "net": q(inv.subtotal),
                "tax": q(inv.tax),
                "gross": q(inv.total),
                "credited": q(inv.amount_credited),
                "paid": q(inv.amount_paid),
                "balance_due": q(inv.balance_due),
            }
        )
    header = list(records[0]) if records else _INVOICE_HEADER
    # The totals are the one selector's (`billing.figures`), so they match the dashboard's
    # "Money by currency" and `reseller/figures/` to the cent; they equal the sum of the
    # listed non-void rows (tested).
    totals = {
        month.currency: {column: getattr(month, name) for column, name in _INVOICE_TOTALS}
        for month in money_for_month(reseller=reseller, period_start=period.start)
        if month.invoice_count
    }
    return Export(
        kind="invoices",
        period=period,
        header=tuple(header),
        rows=[tuple(r[c] for c in header) for r in records],
        totals=dict(sorted(totals.items())),
        summed=tuple(column for column, _ in _INVOICE_TOTALS),
    )


_INVOICE_TOTALS = (
    ("net", "invoiced_net"),
    ("tax", "invoiced_tax"),
    ("gross", "invoiced_gross"),
    ("credited", "credited_gross"),
    ("paid", "paid"),
    ("balance_due", "balance_due"),
)


_INVOICE_HEADER = [
    "number", "status", "customer_id", "customer", "period", "issued_on", "due_on", "currency",
    "net", "tax", "gross", "credited", "paid", "balance_due",
]  # fmt: skip


def export_credit_notes(*, reseller: Reseller, period: Period) -> Export:
    notes = (
        CreditNote.objects.for_reseller(reseller)
        .filter(issued_on__gte=period.start, issued_on__lt=period.end)
        .select_related("customer", "invoice")
        .order_by("number")
    )
    header = [
        "number", "invoice", "customer_id", "customer", "issued_on", "reason", "currency",
        "net", "tax", "gross",
    ]  # fmt: skip
    records = [
        {
            "number": note.number,
            "invoice": note.invoice.number,
            "customer_id": note.customer_id,
            "customer": _text(note.customer.name),
            "issued_on": note.issued_on.isoformat(),
            "reason": note.reason,
            "currency": note.currency,
            "net": quantize_money(note.subtotal, note.currency),
            "tax": quantize_money(note.tax, note.currency),
            "gross": quantize_money(note.total, note.currency),
        }
        for note in notes
    ]
    return _export("credit-notes", period, header, records, ("net", "tax", "gross"))


def _payment_row(kind, row_id, pay, when, reference, amount) -> dict:
    return {
        "type": kind,
        "id": row_id,
        "payment": pay.pk,
        "invoice": pay.invoice.number,
        "customer_id": pay.customer_id,
        "customer": _text(pay.customer.name),
        "date": when.astimezone(pay.reseller.tzinfo).date().isoformat(),
        "method": pay.method,
        "reference": _text(reference),
        "currency": pay.currency,
        "amount": quantize_money(amount, pay.currency),
    }


def export_payments(*, reseller: Reseller, period: Period) -> Export:
    start, end = _bounds(reseller, period)
    header = [
        "type", "id", "payment", "invoice", "customer_id", "customer", "date", "method",
        "reference", "currency", "amount",
    ]  # fmt: skip
    records = []
    for pay in (
        Payment.objects.for_reseller(reseller)
        .filter(paid_at__gte=start, paid_at__lt=end)
        .select_related("customer", "invoice", "reseller")
        .order_by("paid_at", "pk")
    ):
        records.append(_payment_row("payment", pay.pk, pay, pay.paid_at, pay.reference, pay.amount))
    for ref in (
        Refund.objects.filter(
            payment__reseller=reseller, refunded_at__gte=start, refunded_at__lt=end
        )
        .select_related("payment__customer", "payment__invoice", "payment__reseller")
        .order_by("refunded_at", "pk")
    ):
        pay = ref.payment
        records.append(
            _payment_row("refund", ref.pk, pay, ref.refunded_at, ref.reference, -ref.amount)
        )
    return _export("payments", period, header, records, ("amount",))


_BUILDERS = {
    "invoices": export_invoices,
    "credit-notes": export_credit_notes,
    "payments": export_payments,
}


def export_build(*, reseller: Reseller, kind: str, period: Period) -> Export:
    if kind not in _BUILDERS:
        raise ApplicationError("not_found", f"No export {kind!r}: one of {', '.join(KINDS)}.")
    return _BUILDERS[kind](reseller=reseller, period=period)


def export_csv(export: Export) -> str:
    """The CSV text: the header, one row per document, then one `total` row per currency
    (the first column says `total`, the currency column its currency, summed columns their
    sums, the rest empty)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(export.header)
    writer.writerows(export.rows)
    currency_at = export.header.index("currency")
    for currency, sums in export.totals.items():
        row = ["" for _ in export.header]
        row[0] = "total"
        row[currency_at] = currency
        for column in export.summed:
            row[export.header.index(column)] = sums.get(column, Decimal(0))
        writer.writerow(row)
    return out.getvalue()
