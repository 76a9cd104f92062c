"""The dashboard's money figures add up against the documents, per currency: amounts due net
of credit notes and payments, overdue from the one definition, and the monthly trend's
revenue net of credit notes against the cost of the same customers (issue 17 item 5)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from billing.balance.services import balance_adjust
from billing.credit_notes.services import credit_note_create
from billing.dashboard import dashboard_build
from billing.invoicing.issuing import invoice_issue
from billing.invoicing.voiding import invoice_void
from billing.money import format_money
from billing.payments.services import payment_create
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage

SEPTEMBER = dt.date(2026, 9, 1)
ISSUED_AT = dt.datetime(2026, 10, 3, 4, tzinfo=dt.UTC)  # due 2026-10-17 (14 days)
NOW = dt.datetime(2026, 10, 20, 4, tzinfo=dt.UTC)  # 3 days overdue


def _issued(reseller, name, currency, gib, customer=None):
    customer = customer or factories.CustomerFactory(
        reseller=reseller, name=name, currency=currency
    )
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


# --- One selector per currency: dashboard, API and CSV export agree with the documents ----


@pytest.fixture
def ledger(books):
    """`books` plus a EUR credit note and a partial EUR payment, and a void USD invoice."""
    reseller, usd, eur, paid_in_full, note = books
    eur_note = credit_note_create(invoice=eur, now=ISSUED_AT, amount="4.00", send_email=False)
    payment_create(invoice=eur, amount="3.00", now=ISSUED_AT)
    voided = _issued(reseller, "Hooli", "USD", 3)
    invoice_void(invoice=voided, reason="Wrong plan", now=ISSUED_AT)
    # Balances: Wayne has USD 5.00 of credit before its invoice is issued (applied to it,
    # after tax); Initech is given EUR 2.00 after its invoice was issued (held).
    wayne = factories.CustomerFactory(reseller=reseller, name="Wayne", currency="USD")
    balance_adjust(customer=wayne, amount="5.00", reason="Goodwill", now=ISSUED_AT)
    with_balance = _issued(reseller, "Wayne", "USD", 1, customer=wayne)
    balance_adjust(customer=eur.customer, amount="2.00", reason="Goodwill", now=ISSUED_AT)
    return reseller, [usd, eur, paid_in_full, voided, with_balance], [note, eur_note]


def _from_documents(invoices, notes):
    """What each currency's figures must be, summed here from the documents themselves."""
    expected = {}
    for invoice in invoices:
        invoice.refresh_from_db()
        if invoice.status == "void":
            continue
        row = expected.setdefault(
            invoice.currency,
            dict.fromkeys(
                ("net", "tax", "gross", "credited_net", "credited", "paid", "applied", "due"),
                Decimal(0),
            ),
        )
        credited = sum((n.total for n in notes if n.invoice_id == invoice.pk), Decimal(0))
        paid = sum((p.amount - p.to_balance for p in invoice.payments.all()), Decimal(0))
        row["net"] += invoice.subtotal
        row["tax"] += invoice.tax
        row["gross"] += invoice.total
        row["credited_net"] += sum((n.subtotal for n in notes if n.invoice_id == invoice.pk), 0)
        row["credited"] += credited
        row["paid"] += paid
        row["applied"] += invoice.balance_applied
        if invoice.status == "finalized":
            row["due"] += invoice.total - invoice.balance_applied - credited - paid
    return expected


@pytest.mark.django_db
def test_every_money_figure_on_the_dashboard_is_the_documents_per_currency(ledger):
    reseller, invoices, notes = ledger
    expected = _from_documents(invoices, notes)
    dashboard = dashboard_build(reseller=reseller, now=NOW)

    money = {m.currency: m for m in dashboard.money}
    assert list(money) == ["USD", "EUR"]  # the reseller's currency first; never one sum
    for currency, want in expected.items():
        got = money[currency]
        assert got.invoice_count == (3 if currency == "USD" else 1)  # the void one is not
        assert (got.invoiced_net, got.invoiced_tax, got.invoiced_gross) == (
            want["net"],
            want["tax"],
            want["gross"],
        )
        assert got.credited_net == want["credited_net"]
        assert got.credited_gross == want["credited"]
        assert got.revenue == want["net"] - want["credited_net"]
        assert got.paid == want["paid"]
        assert got.balance_applied == want["applied"]
        assert got.balance_due == want["due"]
    # USD: Globex's total less 30 credited and 50 paid, and Wayne's less its 5.00 balance;
    # EUR: Initech's less 4 credited and 3 paid.
    assert money["USD"].balance_applied == Decimal("5.00")
    assert money["USD"].balance_due == invoices[0].total - Decimal("80.00") + (
        invoices[4].total - Decimal("5.00")
    )
    assert money["EUR"].balance_due == invoices[1].total - Decimal("7.00")
    # Upstream cost is in USD: set against USD revenue only (180 GiB of USD customers' traffic
    # at 0.50 = 90.00, plus Hooli's 90 GiB (its void month's traffic was still bought) and
    # Wayne's 30 GiB).
    assert money["USD"].cost == Decimal("90.00") + Decimal("45.00") + Decimal("15.00")
    assert money["USD"].margin == money["USD"].revenue - money["USD"].cost
    assert money["EUR"].cost is None and money["EUR"].margin is None

    receivables = {r.currency: r for r in dashboard.receivables}
    assert {c: (r.balance_due, r.overdue, r.customer_balances) for c, r in receivables.items()} == {
        # due 10-17: all late; Wayne's 5.00 was spent on its invoice, Initech's 2.00 is held
        "USD": (expected["USD"]["due"], expected["USD"]["due"], Decimal("0.00")),
        "EUR": (expected["EUR"]["due"], expected["EUR"]["due"], Decimal("2.00")),
    }
    overdue = {g.key: g for g in dashboard.attention}["overdue"]
    assert overdue.totals == {c: r.overdue for c, r in receivables.items()}


@pytest.mark.django_db
def test_the_dashboard_page_prints_each_currency_row(ledger, client, monkeypatch):
    from django.contrib import admin

    reseller, invoices, notes = ledger
    expected = _from_documents(invoices, notes)
    monkeypatch.setattr(admin.site.__class__, "now", staticmethod(lambda: NOW))
    client.force_login(factories.StaffUserFactory(reseller=reseller, username="books"))

    html = client.get("/admin/").content.decode()

    panel = html[html.index('id="fb-money"') : html.index('id="fb-trend"')]
    for currency, want in expected.items():
        row = panel[panel.index(f'data-currency="{currency}"') :]
        for figure, amount in (
            ("revenue", want["net"] - want["credited_net"]),
            ("paid", want["paid"]),
            ("balance_applied", want["applied"]),
            ("balance_due", want["due"]),
        ):
            if figure == "balance_applied" and not amount:
                assert 'data-money="balance_applied"' not in row[: row.index("</tr>")]
                continue  # shown only when some balance was applied
            cell = row[row.index(f'data-money="{figure}"') :]
            assert cell[cell.index(">") + 1 :].startswith(format_money(amount, currency))
    owed = panel[panel.index('id="fb-receivables"') :]
    held = owed[owed.index('data-currency="EUR"') :]
    held = held[held.index('data-money="customer_balances"') :]
    assert held[held.index(">") + 1 :].startswith(format_money(Decimal("2.00"), "EUR"))


@pytest.mark.django_db
def test_api_figures_and_the_csv_totals_are_the_dashboards(ledger):
    from rest_framework.test import APIClient

    from accounts.api_keys import api_key_create
    from billing.exports import export_build
    from billing.invoicing.periods import period_parse

    reseller, _invoices, _notes = ledger
    dashboard = dashboard_build(reseller=reseller, now=NOW)
    client = APIClient()
    raw_key = api_key_create(reseller=reseller, name="books")[1]
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    body = client.get("/api/v1/reseller/figures/", {"period": "2026-09"}).json()
    assert body["period"] == "2026-09"
    assert [
        (c["currency"], c["revenue"], c["paid"], c["balance_due"], c["cost"])
        for c in body["currencies"]
    ] == [
        (
            m.currency,
            f"{m.revenue:.2f}",
            f"{m.paid:.2f}",
            f"{m.balance_due:.2f}",
            None if m.cost is None else f"{m.cost:.2f}",
        )
        for m in dashboard.money
    ]

    export = export_build(reseller=reseller, kind="invoices", period=period_parse("2026-09"))
    header = list(export.header)
    summed_rows: dict = {}
    for row in export.rows:
        if row[header.index("status")] == "void":
            continue
        sums = summed_rows.setdefault(row[header.index("currency")], {})
        for column in export.summed:
            sums[column] = sums.get(column, Decimal(0)) + row[header.index(column)]
    assert export.totals == summed_rows  # the totals are the rows' sums...
    money = {m.currency: m for m in dashboard.money}
    for currency, sums in export.totals.items():  # ...and the dashboard's figures
        assert sums["net"] == money[currency].invoiced_net
        assert sums["credited"] == money[currency].credited_gross
        assert sums["paid"] == money[currency].paid
        assert sums["balance_due"] == money[currency].balance_due
