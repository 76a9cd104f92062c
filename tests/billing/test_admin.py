import datetime as dt

import pytest
from django.urls import reverse

from billing.invoicing import invoice_create_draft, invoice_finalize
from billing.models import Invoice
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory

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
