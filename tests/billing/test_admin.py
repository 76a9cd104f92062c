import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.invoicing.cycle import invoice_create_draft
from billing.invoicing.finalizing import invoice_finalize
from billing.models import Invoice
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage

OCT = dt.date(2026, 10, 1)
NOW = dt.datetime(2026, 11, 3, tzinfo=dt.UTC)


@pytest.fixture
def two_invoices(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    out = []
    for _ in range(2):
        customer = factories.CustomerFactory()
        SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=customer.reseller))
        invoice, _ = invoice_create_draft(customer=customer, period_start=OCT, now=NOW)
        out.append(invoice_finalize(invoice=invoice, now=NOW, send_email=False))
    return out


def test_staff_see_only_their_resellers_invoices(client, two_invoices):
    mine, theirs = two_invoices
    client.force_login(factories.StaffUserFactory(reseller=mine.reseller))
    listing = client.get(reverse("admin:billing_invoice_changelist"))
    assert mine.number in listing.content.decode()
    assert theirs.number not in listing.content.decode()
    assert client.get(reverse("admin:billing_invoice_change", args=[mine.pk])).status_code == 200
    assert client.get(reverse("admin:billing_invoice_change", args=[theirs.pk])).status_code == 404


def test_admin_action_marks_paid_through_the_service(client, two_invoices):
    mine = two_invoices[0]
    staff = factories.StaffUserFactory(reseller=mine.reseller)
    client.force_login(staff)
    client.post(
        reverse("admin:billing_invoice_changelist"),
        {"action": "mark_paid", "_selected_action": [mine.pk]},
    )
    mine = Invoice.objects.get(pk=mine.pk)
    assert mine.status == "paid"
    assert mine.events.last().actor == staff.username


# --- the invoice page ----------------------------------------------------------------------


@pytest.fixture
def october_draft(db, settings, tmp_path):
    """A JPY customer: base 1,000 + 2.5 JPY/GB over 100 GB; 155 GiB in October, tax 10 %:
    1,000 + 138 (55 x 2.5 = 137.5, rounded once) = 1,138, tax 114, total 1,252."""
    settings.MEDIA_ROOT = tmp_path
    reseller = factories.ResellerFactory(currency="JPY", name="Tokyo Proxies KK")
    reseller.address = "1-2-3 Shibuya\nTokyo"
    reseller.save()
    customer = factories.CustomerFactory(
        reseller=reseller, name="Acme Japan", tax_rate=Decimal(10), address_line1="9 Chome"
    )
    SubscriptionFactory(
        customer=customer, plan=PlanFactory(reseller=reseller, base_fee=Decimal(1000))
    )
    add_usage(factories.SubAccountFactory(customer=customer), OCT, 31, 5)
    invoice, _ = invoice_create_draft(customer=customer, period_start=OCT, now=NOW)
    return invoice


def invoice_page(client, invoice) -> str:
    client.force_login(factories.StaffUserFactory(reseller=invoice.reseller))
    response = client.get(reverse("admin:billing_invoice_change", args=[invoice.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_invoice_page_shows_lines_and_totals_in_the_currency_not_json(client, october_draft):
    page = invoice_page(client, october_draft)
    for text in ("¥1,000", "¥138", "¥1,138", "¥114", "¥1,252", "Balance due", "Amount credited"):
        assert text in page, text
    assert "Tokyo Proxies KK" in page and "1-2-3 Shibuya" in page and "Acme Japan" in page
    assert '"address_lines"' not in page and "&quot;seller&quot;" not in page  # no raw JSON
    assert "Discard draft" in page and "Issue credit note" not in page
    assert reverse("admin:billing_invoice_delete", args=[october_draft.pk]) not in page
    assert 'name="number"' not in page and 'name="_save"' not in page  # all read-only


def test_a_finalized_invoice_offers_a_credit_note_and_never_a_delete(client, october_draft):
    invoice = invoice_finalize(invoice=october_draft, now=NOW, send_email=False)
    page = invoice_page(client, invoice)
    link = reverse("admin:billing_creditnote_add") + f"?invoice={invoice.pk}"
    assert f'href="{link}"' in page and "Issue credit note" in page
    assert "Discard draft" not in page
    assert reverse("admin:billing_invoice_delete", args=[invoice.pk]) not in page
    assert (
        client.post(reverse("admin:billing_invoice_delete", args=[invoice.pk])).status_code == 403
    )
    changelist = client.get(reverse("admin:billing_invoice_changelist")).content.decode()
    assert 'value="delete_selected"' not in changelist
    assert "¥1,252" in changelist


def test_discard_draft_goes_through_the_service(client, october_draft):
    invoice_page(client, october_draft)
    url = reverse("admin:billing_invoice_action", args=[october_draft.pk, "discard_draft"])
    response = client.post(url)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:billing_invoice_changelist")
    assert not Invoice.objects.filter(pk=october_draft.pk).exists()
