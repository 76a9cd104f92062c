"""Webhook payloads are the webhook layer's: services record (type, ids), the builder each
app registered turns the ids into `data.object` at record time (the state at the event), and
every event type keeps its public shape (docs/api.md, "Webhooks")."""

import ast
import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import pytest

from billing.api.serializers import ResellerInvoiceOutputSerializer
from billing.balance.services import balance_adjust
from billing.credit_notes.serializers import CreditNoteOutputSerializer
from billing.credit_notes.services import credit_note_create
from billing.models import Invoice
from billing.payments.serializers import PaymentOutputSerializer
from billing.payments.services import invoice_mark_paid, payment_create
from tests import factories
from tests.billing.test_credit_notes import make_issued_invoice
from usage.models import Allocation, SyncRun, UsageAlert, UsageAlertRule
from webhooks import payloads
from webhooks.catalogue import EVENT_TYPES
from webhooks.events import webhook_event_record, webhook_events_record
from webhooks.models import WebhookEvent
from webhooks.payloads import (
    webhook_payload_builders_register,
    webhook_payload_types,
    webhook_payloads_build,
)

NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
ROOT = Path(__file__).resolve().parents[2]

#: Top-level keys of `data.object` per event type, as documented.
PAYMENT_KEYS = {
    *PaymentOutputSerializer.Meta.fields,
    "invoice_status",
    "invoice_amount_paid",
    "invoice_balance_due",
}
CUSTOMER_SUSPENSION_KEYS = {
    "id", "object", "status", "suspended_at", "suspension_reason", "suspended_by"
}  # fmt: skip
ALLOCATION_KEYS = {
    "id", "object", "sub_account", "upstream_id", "customer", "bytes", "expires_in_days",
    "reason", "status", "error_code", "created_at", "settled_at",
}  # fmt: skip
SHAPES: dict[str, set[str]] = {
    "invoice.finalized": set(ResellerInvoiceOutputSerializer().fields),
    "invoice.paid": set(ResellerInvoiceOutputSerializer().fields),
    "invoice.voided": set(ResellerInvoiceOutputSerializer().fields),
    "invoice.overdue": {
        "id", "object", "number", "customer", "currency", "total", "balance_due", "due_on",
        "days_overdue", "overdue_at",
    },
    "credit_note.created": set(CreditNoteOutputSerializer().fields),
    "payment.created": PAYMENT_KEYS,
    "payment.refunded": PAYMENT_KEYS,
    "usage.alert": {
        "object", "id", "rule", "kind", "customer", "sub_account", "period_start", "fired_at",
        "measured_bytes", "threshold_bytes", "unit_bytes", "message",
    },
    "sync.failed": {
        "object", "id", "kind", "status", "upstream_account", "sub_account", "window_start",
        "window_end", "queued_at", "started_at", "finished_at", "error_code", "error",
    },
    "customer.suspended": CUSTOMER_SUSPENSION_KEYS,
    "customer.reinstated": CUSTOMER_SUSPENSION_KEYS,
    "customer.credit_limit_reached": {
        "id", "object", "customer", "name", "currency", "credit_limit", "exposure",
        "exposure_with_topup", "topup_bytes", "credit_limit_reached_at",
    },
    "sub_account.provisioned": {
        "object", "id", "upstream_id", "customer", "upstream_account", "label",
        "proxy_username", "status", "provisioned_at",
    },
    "allocation.confirmed": ALLOCATION_KEYS,
    "allocation.failed": ALLOCATION_KEYS,
    "customer.balance_changed": {
        "object", "id", "customer", "currency", "kind", "amount", "balance", "invoice",
        "credit_note", "payment", "top_up", "reason", "created_at",
    },
}  # fmt: skip


@pytest.fixture
def world(settings, tmp_path, reseller, customer, sub_account):
    """One object of every kind an event concerns, all of `reseller`."""
    settings.MEDIA_ROOT = tmp_path
    invoice = make_issued_invoice(customer)
    Invoice.objects.filter(pk=invoice.pk).update(overdue_at=NOW - dt.timedelta(days=4))
    note = credit_note_create(invoice=invoice, now=NOW, amount="5.00", send_email=False)
    payment = payment_create(
        invoice=invoice, amount="10.00", now=NOW, paid_at=NOW, method="bank_transfer"
    )
    run = SyncRun.objects.create(
        upstream_account=sub_account.upstream_account,
        sub_account=sub_account,
        kind=SyncRun.Kind.USAGE,
        status=SyncRun.Status.FAILED,
        started_at=NOW,
        finished_at=NOW,
        error_code="upstream_error",
    )
    rule = UsageAlertRule.objects.create(customer=customer, quota_gb=Decimal("10"), percent=80)
    alert = UsageAlert.objects.create(
        rule=rule,
        period_start=dt.date(2026, 11, 1),
        fired_at=NOW,
        measured_bytes=9 * 2**30,
        threshold_bytes=8 * 2**30,
        message="9.00 GB used",
    )
    allocation = Allocation.objects.create(
        sub_account=sub_account,
        idempotency_key="k00000000001",
        bytes=2**30,
        flow_mb=1024,
        status=Allocation.Status.CONFIRMED,
        created_by="login alice",
        next_attempt_at=NOW,
        created_at=NOW,
        confirmed_at=NOW,
        settled_at=NOW,
    )
    balance_adjust(customer=customer, amount="20.00", reason="goodwill", now=NOW)
    entry = balance_adjust(customer=customer, amount="-5.00", reason="correction", now=NOW)
    subject = {
        "invoice": invoice.pk,
        "credit_note": note.pk,
        "payment": payment.pk,
        "usage": alert.pk,
        "sync": run.pk,
        "customer": customer.pk,
        "sub_account": sub_account.pk,
        "allocation": allocation.pk,
    }
    subjects = {t: subject[t.split(".")[0]] for t in SHAPES}
    return reseller, {**subjects, "customer.balance_changed": entry.pk}


def test_every_event_type_in_the_catalogue_has_a_builder_and_a_documented_shape():
    assert webhook_payload_types() == list(EVENT_TYPES)
    assert set(SHAPES) == set(EVENT_TYPES)


@pytest.mark.django_db
@pytest.mark.parametrize("event_type", list(EVENT_TYPES))
def test_each_event_types_payload_has_its_documented_keys(world, event_type):
    reseller, subjects = world
    facts = {"exposure_with_topup": Decimal("512.50"), "topup_bytes": 10 * 2**30}
    (data,) = webhook_payloads_build(
        event_type=event_type,
        ids=[subjects[event_type]],
        reseller_id=reseller.pk,
        now=NOW,
        facts=facts,
    )
    assert set(data) == SHAPES[event_type]
    assert data["id"] == subjects[event_type]
    if event_type == "customer.balance_changed":
        assert (data["amount"], data["balance"]) == ("-5.00", "15.00")  # after this entry


def _documented_keys() -> dict[str, set[str]]:
    """The events table of docs/api.md: type -> the keys of a `{...}` `data.object`."""
    text = (ROOT / "docs" / "api.md").read_text()
    table = text.split("**Events.**", 1)[1].split("**Payload.**", 1)[0]
    documented = {}
    for event_type, shape in re.findall(r"^\| `([a-z_.]+)` \|.*`(\{.*\})`.*\|$", table, re.M):
        top_level = re.sub(r"\{[^{}]*\}", "", shape[1:-1])  # drop nested objects
        top_level = re.sub(r':\s*"[^"]*"', "", top_level)  # and values ("object": "invoice")
        documented[event_type] = set(re.findall(r'"([a-z_]+)"', top_level))
    return documented


def test_the_docs_events_table_lists_every_type_and_its_keys():
    text = (ROOT / "docs" / "api.md").read_text()
    table = text.split("**Events.**", 1)[1].split("**Payload.**", 1)[0]
    assert set(re.findall(r"^\| `([a-z_.]+)` \|", table, re.M)) == set(EVENT_TYPES)
    documented = _documented_keys()
    assert len(documented) >= 9
    for event_type, keys in documented.items():
        assert keys == SHAPES[event_type], event_type


@pytest.mark.django_db
def test_payload_is_the_invoice_as_it_was_at_each_event(settings, tmp_path, customer):
    settings.MEDIA_ROOT = tmp_path
    factories_endpoint(customer.reseller, ["invoice.finalized", "invoice.paid"])
    invoice = make_issued_invoice(customer)
    finalized = webhook_event_record(
        reseller_id=customer.reseller_id,
        event_type="invoice.finalized",
        subject_id=invoice.pk,
        now=NOW,
    )
    invoice_mark_paid(invoice=invoice, now=NOW + dt.timedelta(days=1))
    finalized.refresh_from_db()
    paid = WebhookEvent.objects.get(type="invoice.paid")
    assert finalized.data["status"] == "finalized" and finalized.data["paid_at"] is None
    assert paid.data["status"] == "paid" and paid.data["balance_due"] == "0.00"


def factories_endpoint(reseller, events):
    from webhooks.services import webhook_endpoint_create

    return webhook_endpoint_create(
        reseller=reseller, url="https://hooks.example.com/flowbill", enabled_events=events
    )


@pytest.mark.django_db
def test_nothing_is_built_for_a_reseller_without_a_subscribed_endpoint(
    monkeypatch, reseller, make_endpoint
):
    make_endpoint(events=["usage.alert"])
    calls = []
    monkeypatch.setitem(payloads._BUILDERS, "sync.failed", lambda ids, **kw: calls.append(ids))
    assert (
        webhook_event_record(reseller_id=reseller.pk, event_type="sync.failed", subject_id=1)
        is None
    )
    assert calls == [] and not WebhookEvent.objects.exists()


@pytest.mark.django_db
def test_a_batch_builds_once_and_records_one_event_per_id_in_order(
    monkeypatch, reseller, make_endpoint
):
    make_endpoint(events=["sync.failed"])
    calls = []

    def build(ids, *, reseller_id, now, facts):
        calls.append(list(ids))
        return {pk: {"id": pk, "reseller": reseller_id} for pk in ids}

    monkeypatch.setitem(payloads._BUILDERS, "sync.failed", build)
    events = webhook_events_record(
        reseller_id=reseller.pk, event_type="sync.failed", subject_ids=[9, 4, 7], now=NOW
    )
    assert calls == [[9, 4, 7]]
    assert [e.data["id"] for e in events] == [9, 4, 7]
    assert [e.data["id"] for e in WebhookEvent.objects.order_by("pk")] == [9, 4, 7]


@pytest.mark.django_db
def test_another_resellers_object_is_never_built(world, make_endpoint):
    _, subjects = world
    other = factories.ResellerFactory()
    make_endpoint(events=["sync.failed"], reseller=other)
    with pytest.raises(LookupError, match="no object"):
        webhook_event_record(
            reseller_id=other.pk, event_type="sync.failed", subject_id=subjects["sync.failed"]
        )


def test_a_type_gets_one_builder_and_only_catalogue_types():
    def build(ids, **kwargs):
        return {}

    with pytest.raises(ValueError, match="already has a payload builder"):
        webhook_payload_builders_register({"sync.failed": build})
    with pytest.raises(ValueError, match="unknown webhook event type"):
        webhook_payload_builders_register({"invoice.eaten": build})
    registered = payloads._BUILDERS["sync.failed"]
    webhook_payload_builders_register({"sync.failed": registered})  # the same again: fine


def test_services_record_events_by_id_and_no_domain_module_imports_an_api_package():
    """Only the webhook layer calls `webhook_event_emit` (a payload given as is); in billing
    and usage only the API packages, the admin and the registered payload builders import an
    API package or an API serializer module."""
    allowed = {"billing/webhook_payloads.py", "usage/webhook_payloads.py", "billing/admin.py"}
    offenders = []
    for app in ("billing", "usage"):
        for path in sorted((ROOT / app).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if "/api/" in rel or "/migrations/" in rel or rel in allowed:
                continue
            if rel.endswith(("/views.py", "/serializers.py", "/urls.py", "/openapi.py")):
                continue  # the API layer kept inside a sub-domain package (presentation)
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                for name in names:
                    parts = name.split(".")
                    if (
                        "api" in parts
                        or parts[-1] == "serializers"
                        or name.endswith(".webhook_event_emit")
                    ):
                        offenders.append(f"{rel}: {name}")
    assert offenders == []
