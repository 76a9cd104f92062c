"""The dashboard's money figures add up against the documents, per currency: amounts due net
of credit notes and payments, overdue from the one definition, and the monthly trend's
revenue net of credit notes against the cost of the same customers (issue 17 item 5)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from billing.credit_notes.services import credit_note_create
from billing.dashboard import dashboard_build
from billing.invoicing import invoice_issue
from billing.payments.services import payment_create
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage

SEPTEMBER = dt.date(2026, 9, 1)
ISSUED_AT = dt.datetime(2026, 10, 3, 4, tzinfo=dt.UTC)  # due 2026-10-17 (14 days)
NOW = dt.datetime(2026, 10, 20, 4, tzinfo=dt.UTC)  # 3 days overdue


def _issued(reseller, name, currency, gib):
    customer = factories.CustomerFactory(reseller=reseller, name=name, currency=currency)
    SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=reseller, currency=currency))
    sub = factories.SubAccountFactory(customer=customer, upstream_account=reseller.upstream)
    add_usage(sub, SEPTEMBER, 30, gib)
    invoice, _ = invoice_issue(
        customer=customer, period_start=SEPTEMBER, now=ISSUED_AT, send_email=False
    )
    return invoice


@pytest.fixture
def books(db):
    reseller = factories.ResellerFactory(
        timezone="Asia/Shanghai", currency="USD", payment_terms_days=14
    )
    reseller.upstream = factories.UpstreamAccountFactory(
        reseller=reseller, cost_per_gb=Decimal("0.50")
    )
    usd = _issued(reseller, "Globex", "USD", 5)  # 150 GiB
    eur = _issued(reseller, "Initech", "EUR", 2)  # 60 GiB
    paid_in_part = _issued(reseller, "Umbrella", "USD", 1)  # 30 GiB
    note = credit_note_create(invoice=usd, now=ISSUED_AT, amount="30.00", send_email=False)
    payment_create(invoice=usd, amount="50.00", now=ISSUED_AT)
    payment_create(invoice=paid_in_part, amount=paid_in_part.total, now=ISSUED_AT)  # all
    return reseller, usd, eur, paid_in_part, note


@pytest.mark.django_db
def test_overdue_amounts_are_the_balance_due_per_currency(books):
    reseller, usd, eur, _paid_in_full, note = books
    dashboard = dashboard_build(reseller=reseller, now=NOW)
    groups = {g.key: g for g in dashboard.attention}
    overdue = groups["overdue"]

    assert {i.invoice_id for i in overdue.items} == {usd.pk, eur.pk}  # the paid one is not
    assert overdue.totals == {
        "USD": usd.total - note.total - Decimal("50.00"),
        "EUR": eur.total,
    }  # never one sum across currencies
    assert groups["unpaid"].count == 0


@pytest.mark.django_db
def test_the_trend_nets_credit_notes_and_leaves_other_currencies_cost_out(books):
    reseller, usd, _eur, paid_in_full, note = books
    september = next(
        m for m in dashboard_build(reseller=reseller, now=NOW).trend if m.period.start == SEPTEMBER
    )
    # Revenue: the USD invoices' net less the USD credit note's net (EUR is not added in).
    assert september.revenue == usd.subtotal + paid_in_full.subtotal - note.subtotal
    # Cost: the traffic of the USD customers only (150 + 30 GiB at 0.50), not Initech's 60.
    assert september.cost == Decimal("90.00")
