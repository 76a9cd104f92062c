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
from functools import cache, lru_cache

from django.core.exceptions import ImproperlyConfigured
from django.db.models import F, QuerySet
from django.utils import timezone
from rest_framework import serializers
from rest_framework.relations import RelatedField

from accounts.models import Customer, Reseller
from billing.credit_notes.selectors import invoices_with_credit_totals
from billing.models import Invoice, InvoiceStatus
from billing.selectors import CUSTOMER_VISIBLE_STATUSES, invoice_lines_rows
from core.compiled import CompiledQuery


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


def _sentinel(n: int, kind: type) -> object | None:
    """A stand-in value of type `kind` that no real value equals (see core.compiled)."""
    if kind is int:
        return -(10**15) - n
    if kind is str:
        return f"\x00sentinel-{n}"
    if kind is dt.date:
        return dt.date(1, 1, 1 + n)
    return None


def _page_rows(serializer_class, reseller_id, customer_id, filters: dict, ordering: str):
    rows = _visible_rows(serializer_class).filter(
        reseller_id=reseller_id, customer_id=customer_id, **filters
    )
    return rows.order_by(ordering, "pk")


@cache
def _compiled_page(serializer_class, lookups: tuple[str, ...], kinds: tuple[type, ...], ordering):
    def build(reseller_id, customer_id, *values):
        filters = dict(zip(lookups, values, strict=True))
        return _page_rows(serializer_class, reseller_id, customer_id, filters, ordering)

    stand_ins = [_sentinel(n, kind) for n, kind in enumerate(kinds, start=2)]
    return CompiledQuery(build, sentinels=[_sentinel(0, int), _sentinel(1, int), *stand_ins])


class CustomerInvoicePage:
    """`customer_invoice_rows` filtered (`filters`: lookup -> value) and ordered, sliced by
    `ApiPagination` like a queryset: a page is one statement compiled once per filter shape
    and ordering (compiling the amounts-due annotations cost more CPU than reading the
    page); `count()` is the ORM's. A filter value of a type without a stand-in is read
    through the ORM."""

    def __init__(self, *, customer: Customer, serializer_class, filters: dict, ordering: str):
        self.args = (serializer_class, customer.reseller_id, customer.pk, filters, ordering)
        kinds = tuple(type(value) for value in filters.values())
        self.compiled = None
        if all(_sentinel(0, kind) is not None for kind in kinds):
            self.compiled = _compiled_page(serializer_class, tuple(filters), kinds, ordering)

    def __getitem__(self, page: slice) -> list:
        if self.compiled is None:
            return list(_page_rows(*self.args)[page])
        _serializer_class, reseller_id, customer_id, filters, _ordering = self.args
        return self.compiled.rows(
            reseller_id,
            customer_id,
            *filters.values(),
            limit=page.stop - page.start,
            offset=page.start,
        )

    def count(self) -> int:
        return _page_rows(*self.args).count()


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


@lru_cache(maxsize=64)
def _compiled_lines(columns: tuple[str, ...], count: int) -> CompiledQuery:
    """`invoice_lines_rows` of `count` invoices, compiled once per page size."""

    def build(reseller_id, *invoice_ids):
        return invoice_lines_rows(
            reseller=reseller_id, invoice_ids=list(invoice_ids), columns=columns
        )

    return CompiledQuery(build, sentinels=[_sentinel(n, int) for n in range(count + 1)])


def invoice_rows_render(
    rows: list[Mapping], *, reseller: Reseller, serializer_class, today: dt.date
) -> list[dict]:
    """Each row as `serializer_class` renders its invoice (`today`: the reseller's)."""
    plan = invoice_rows_plan(serializer_class)
    lines: dict[int, list[dict]] = {}
    if plan.lines is not None and rows:
        currency_of = {row["id"]: row["currency"] for row in rows}
        lines_of_page = _compiled_lines(plan.lines.columns, len(currency_of))
        for line in lines_of_page.rows(reseller.pk, *currency_of):
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
