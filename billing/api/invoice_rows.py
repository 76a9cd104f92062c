"""The customer invoice list rendered from rows, in exactly the shape of
`InvoiceOutputSerializer` (which documents it and renders every lone invoice).

A page of `GET /api/v1/invoices/` is read as plain rows (`customer_invoice_rows`: one query with
the amounts due annotated, one for the page's lines) and each value is formatted by the
serializer's own field (`to_representation`), so dates, decimals, money and choices read
exactly as the serializer writes them, without building model instances or walking
attributes per field (issue 18: at most half of e822d51's server CPU per request).

The fields come from the serializer: a plain or money field added to it is rendered here
too; a field this module cannot render from a row (a new method field) raises
`ImproperlyConfigured` naming it, so the API tests fail instead of the shape drifting.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache

from django.core.exceptions import ImproperlyConfigured
from django.db.models import F, QuerySet
from django.utils import timezone
from rest_framework import serializers
from rest_framework.relations import RelatedField

from accounts.models import Customer, Reseller
from billing.credit_notes.selectors import invoices_with_credit_totals
from billing.models import Invoice, InvoiceStatus
from billing.selectors import CUSTOMER_VISIBLE_STATUSES, invoice_lines_rows


def overdue_days(*, status: str, due_on: dt.date | None, balance_due, today: dt.date) -> int:
    """Days past the due date while finalized with a balance due (the reseller's `today`);
    0 otherwise: the invoice's `days_overdue` (`overdue` is this > 0)."""
    if status != InvoiceStatus.FINALIZED or due_on is None or balance_due <= 0:
        return 0
    return max((today - due_on).days, 0)


def _days_overdue(row: Mapping, today: dt.date) -> int:
    return overdue_days(
        status=row["status"], due_on=row["due_on"], balance_due=row["balance_due"], today=today
    )


#: Row-based values of the serializer's method fields: (row, the reseller's today) -> value.
METHOD_FIELDS: dict[str, Callable[[Mapping, dt.date], object]] = {
    "replaces": lambda row, today: row["replaces_number"] if row["replaces_id"] else None,
    "days_overdue": _days_overdue,
    "overdue": lambda row, today: _days_overdue(row, today) > 0,
}
#: Columns the method fields and money read besides the fields' own.
INVOICE_COLUMNS = ("currency", "status", "due_on", "balance_due", "replaces_id", "replaces_number")
PLAIN, MONEY, METHOD, LINES = "plain", "money", "method", "lines"


@dataclass(frozen=True)
class _Plan:
    """How to render each field of a serializer from a row, in the serializer's order:
    (name, kind, column, function)."""

    fields: tuple[tuple[str, str, str, Callable | None], ...]
    columns: tuple[str, ...]
    lines: _Plan | None = None


def _plan_of(serializer: serializers.Serializer, *, nested: bool = False) -> _Plan:
    fields, columns, lines = [], [], None
    for name, field in serializer.fields.items():
        if isinstance(field, serializers.ListSerializer) and not nested:
            lines = _plan_of(field.child, nested=True)
            fields.append((name, LINES, "", None))
        elif isinstance(field, serializers.SerializerMethodField):
            if nested or name not in METHOD_FIELDS:
                raise ImproperlyConfigured(
                    f"{type(serializer).__name__}.{name}: no row-based value in "
                    "billing.api.invoice_rows.METHOD_FIELDS"
                )
            fields.append((name, METHOD, "", METHOD_FIELDS[name]))
        elif isinstance(field, serializers.Serializer | serializers.ListSerializer):
            raise ImproperlyConfigured(f"{type(serializer).__name__}.{name}: nested too deep")
        else:
            if hasattr(field, "currency_from"):  # MoneyField: (amount, currency)
                kind, function = MONEY, field.to_representation
            elif isinstance(field, RelatedField):  # a primary key: the row holds the id
                kind, function = PLAIN, int
            else:
                kind, function = PLAIN, field.to_representation
            fields.append((name, kind, field.source, function))
            columns.append(field.source)
    if not nested:
        columns += INVOICE_COLUMNS
    return _Plan(tuple(fields), tuple(dict.fromkeys(columns)), lines)


@cache
def invoice_rows_plan(serializer_class: type[serializers.Serializer]) -> _Plan:
    """The rendering plan of `serializer_class` (built once per class)."""
    return _plan_of(serializer_class())


@cache
def _visible_rows(serializer_class) -> QuerySet:
    """Customer-visible invoices as rows with the amounts due annotated, built once: the
    annotations (`invoices_with_credit_totals`) cost more to build than the page to read,
    and a filtered clone of this template shares them."""
    plan = invoice_rows_plan(serializer_class)
    visible = Invoice.objects.filter(status__in=CUSTOMER_VISIBLE_STATUSES)
    return (
        invoices_with_credit_totals(visible)
        .annotate(replaces_number=F("replaces__number"))
        .values(*plan.columns)
    )


def customer_invoice_rows(*, customer: Customer, serializer_class) -> QuerySet:
    """The customer's finalized, paid and void invoices as rows holding the columns
    `serializer_class`'s fields read (lines are read per page by the renderer)."""
    return _visible_rows(serializer_class).filter(
        reseller_id=customer.reseller_id, customer_id=customer.pk
    )


def _render(plan: _Plan, row: Mapping, *, currency: str, today: dt.date, lines: dict) -> dict:
    out = {}
    for name, kind, column, function in plan.fields:
        if kind == PLAIN:
            value = row[column]
            out[name] = None if value is None else function(value)
        elif kind == MONEY:
            out[name] = function((row[column], currency))
        elif kind == METHOD:
            out[name] = function(row, today)
        else:
            out[name] = lines.get(row["id"], [])
    return out


def invoice_rows_render(
    rows: list[Mapping], *, reseller: Reseller, serializer_class, today: dt.date
) -> list[dict]:
    """Each row as `serializer_class` renders its invoice (`today`: the reseller's)."""
    plan = invoice_rows_plan(serializer_class)
    lines: dict[int, list[dict]] = {}
    if plan.lines is not None and rows:
        currency_of = {row["id"]: row["currency"] for row in rows}
        for line in invoice_lines_rows(
            reseller=reseller, invoice_ids=list(currency_of), columns=plan.lines.columns
        ):
            invoice_id = line["invoice_id"]
            lines.setdefault(invoice_id, []).append(
                _render(plan.lines, line, currency=currency_of[invoice_id], today=today, lines={})
            )
    return [_render(plan, row, currency=row["currency"], today=today, lines=lines) for row in rows]


class InvoiceRowsListSerializer(serializers.ListSerializer):
    """`many=True` of the invoice output serializer: a page of rows (`customer_invoice_rows`) is
    rendered by `invoice_rows_render`; model instances as DRF renders them. The view puts
    the reseller in the context (`reseller`), for its today and the lines' scope."""

    def to_representation(self, data):
        items = list(data.all() if hasattr(data, "all") else data)
        if not items or not isinstance(items[0], Mapping):
            return super().to_representation(items)
        reseller = self.context["reseller"]
        return invoice_rows_render(
            items,
            reseller=reseller,
            serializer_class=type(self.child),
            today=timezone.now().astimezone(reseller.tzinfo).date(),
        )
