"""Billing's webhook events: invoice.finalized (batch, single, hourly cycle), invoice.paid,
invoice.voided, credit_note.created. Each fires once per transition with the resource as the
reseller API shows it; nothing is written for a reseller without a subscribed endpoint."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.api.serializers import ResellerInvoiceOutputSerializer
from billing.credit_notes.serializers import CreditNoteOutputSerializer
from billing.credit_notes.services import credit_note_create
from billing.invoicing.cycle import invoice_create_draft, invoice_cycle_run
from billing.invoicing.finalizing import invoice_finalize
from billing.invoicing.issuing import invoices_issue_for_period
from billing.invoicing.voiding import invoice_void
from billing.models import Invoice
from billing.payments.services import invoice_mark_paid
from core.errors import ApplicationError
from tests import factories
from tests.billing.factories import PlanFactory, customers_using
from webhooks.models import WebhookEvent
from webhooks.services import webhook_endpoint_create

OCT = dt.date(2026, 10, 1)
AFTER_OCTOBER = dt.datetime(2026, 11, 3, 12, tzinfo=dt.UTC)
LATER = dt.datetime(2026, 11, 10, 12, tzinfo=dt.UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(settings, tmp_path):
    """Three customers with October usage (5 GiB a day), nothing issued yet."""
    settings.MEDIA_ROOT = tmp_path
    reseller = factories.ResellerFactory(invoice_prefix="SH")
    plan = PlanFactory(reseller=reseller)
    return reseller, customers_using(reseller, plan, count=3, start=OCT, days=31, gib_per_day=5)


def _endpoint(reseller, events):
    return webhook_endpoint_create(
        reseller=reseller, url="https://hooks.example.com/flowbill", enabled_events=events
    )


def _api(invoice: Invoice) -> dict:
    import json

    from rest_framework.renderers import JSONRenderer

    fresh = Invoice.objects.get(pk=invoice.pk)
    return json.loads(JSONRenderer().render(ResellerInvoiceOutputSerializer(fresh).data))


def _events(event_type):
    return list(WebhookEvent.objects.filter(type=event_type).order_by("pk"))


def test_batch_finalization_emits_one_event_per_invoice_with_the_api_representation(shop):
    reseller, customers = shop
    _endpoint(reseller, ["invoice.finalized"])
    invoices_issue_for_period(
        reseller=reseller, period_start=OCT, now=AFTER_OCTOBER, send_email=False
    )
    events = _events("invoice.finalized")
    invoices = list(Invoice.objects.filter(reseller=reseller).order_by("pk"))
    assert len(events) == 3 and len(invoices) == 3
    assert [e.data for e in events] == [_api(i) for i in invoices]
    first = events[0].data
    assert first["number"] == "SH-2026-00001" and first["status"] == "finalized"
    assert first["customer"] == customers[0].pk and first["period_start"] == "2026-10-01"
    assert first["total"] == "147.50" and first["lines"]
    assert all(e.reseller_id == reseller.pk for e in events)


def test_batch_without_a_subscribed_endpoint_writes_nothing_and_asks_once(shop):
    reseller, _ = shop
    _endpoint(reseller, ["invoice.paid"])  # another type only
    with CaptureQueriesContext(connection) as queries:
        invoices_issue_for_period(
            reseller=reseller, period_start=OCT, now=AFTER_OCTOBER, send_email=False
        )
    assert Invoice.objects.filter(status="finalized").count() == 3
    assert not WebhookEvent.objects.exists()
    endpoint_queries = [q for q in queries if "webhooks_webhookendpoint" in q["sql"]]
    assert len(endpoint_queries) == 1  # one check for the batch, not one per invoice


def test_single_finalization_and_the_hourly_cycle_emit_once(shop):
    reseller, customers = shop
    _endpoint(reseller, ["invoice.finalized"])
    draft = invoice_create_draft(customer=customers[0], period_start=OCT, now=AFTER_OCTOBER)
    draft = draft[0] if isinstance(draft, tuple) else draft
    assert not WebhookEvent.objects.exists()  # a draft is not an event
    invoice_finalize(invoice=draft, now=AFTER_OCTOBER, send_email=False)
    assert [e.data["id"] for e in _events("invoice.finalized")] == [draft.pk]
    # the cycle finalizes the other two (drafted now, due after their grace period)
    invoice_cycle_run(reseller=reseller, now=AFTER_OCTOBER)
    invoice_cycle_run(reseller=reseller, now=LATER)
    invoice_cycle_run(reseller=reseller, now=LATER)
    finalized = Invoice.objects.filter(reseller=reseller, status="finalized")
    assert finalized.count() == 3
    assert sorted(e.data["id"] for e in _events("invoice.finalized")) == sorted(
        finalized.values_list("pk", flat=True)
    )


def test_paid_and_voided_emit_once_with_the_new_status(shop):
    reseller, _ = shop
    _endpoint(reseller, ["invoice.paid", "invoice.voided"])
    invoices_issue_for_period(
        reseller=reseller, period_start=OCT, now=AFTER_OCTOBER, send_email=False
    )
    first, second = Invoice.objects.filter(reseller=reseller).order_by("pk")[:2]
    assert not WebhookEvent.objects.exists()  # finalized is not subscribed
    invoice_mark_paid(invoice=first, now=LATER, note="wire 1")
    invoice_void(invoice=second, now=LATER, reason="duplicate")
    with pytest.raises(ApplicationError, match="cannot become paid"):
        invoice_mark_paid(invoice=first, now=LATER)  # refused: nothing more is sent
    (paid,) = _events("invoice.paid")
    (voided,) = _events("invoice.voided")
    assert paid.data == _api(first) and paid.data["status"] == "paid"
    assert paid.data["paid_at"] is not None and paid.data["balance_due"] == "0.00"
    assert voided.data == _api(second) and voided.data["status"] == "void"


def test_credit_note_created_emits_once_even_when_the_key_is_repeated(shop):
    reseller, _ = shop
    _endpoint(reseller, ["credit_note.created"])
    invoices_issue_for_period(
        reseller=reseller, period_start=OCT, now=AFTER_OCTOBER, send_email=False
    )
    invoice = Invoice.objects.filter(reseller=reseller).order_by("pk").first()
    note = credit_note_create(
        invoice=invoice, now=LATER, amount="5.00", idempotency_key="k1", send_email=False
    )
    again = credit_note_create(
        invoice=invoice, now=LATER, amount="5.00", idempotency_key="k1", send_email=False
    )
    assert again.pk == note.pk
    (event,) = _events("credit_note.created")
    import json

    from rest_framework.renderers import JSONRenderer

    assert event.data == json.loads(JSONRenderer().render(CreditNoteOutputSerializer(note).data))
    assert event.data["total"] == "5.00" and event.data["invoice"] == invoice.pk


def test_another_resellers_endpoint_gets_nothing(shop):
    reseller, _ = shop
    _endpoint(factories.ResellerFactory(), ["invoice.finalized"])
    invoices_issue_for_period(
        reseller=reseller, period_start=OCT, now=AFTER_OCTOBER, send_email=False
    )
    assert not WebhookEvent.objects.exists()
