"""Billing's webhook events: `invoice.finalized`, `invoice.paid`, `invoice.voided` and
`credit_note.created`, emitted in the transaction that makes the change (so a rolled-back
change sends nothing, and each transition sends exactly once).

`data.object` is the resource as the reseller API answers it (`GET reseller/invoices/{id}/`,
`GET reseller/credit-notes/{id}/`). A batch asks once per reseller whether any active endpoint
subscribes to the type: a reseller without one (most) costs one query per batch, nothing more.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from rest_framework.renderers import JSONRenderer

from webhooks.catalogue import CREDIT_NOTE_CREATED
from webhooks.events import webhook_event_emit
from webhooks.models import WebhookEndpoint


def reseller_subscribed(*, reseller_id: int, event_type: str) -> bool:
    """Whether an active endpoint of the reseller wants `event_type` (one query)."""
    return any(
        event_type in (events or [])
        for events in WebhookEndpoint.objects.filter(
            reseller_id=reseller_id, is_active=True
        ).values_list("enabled_events", flat=True)
    )


def _plain(data) -> dict:
    """Serializer output as plain JSON types (what is stored and sent)."""
    return json.loads(JSONRenderer().render(data))


def invoices_event_emit(
    *, reseller_id: int, invoice_ids: Sequence[int], event_type: str, now: dt.datetime
) -> None:
    """Emit `event_type` for each of these invoices of the reseller (in the caller's
    transaction, after the change is written)."""
    if not invoice_ids or not reseller_subscribed(reseller_id=reseller_id, event_type=event_type):
        return
    from billing.api.serializers import ResellerInvoiceOutputSerializer
    from billing.credit_notes.selectors import invoices_with_credit_totals
    from billing.models import Invoice
    from billing.selectors import invoices_with_lines

    invoices = invoices_with_lines(
        invoices_with_credit_totals(
            Invoice.objects.filter(reseller_id=reseller_id, pk__in=invoice_ids).order_by("pk")
        )
    )
    for invoice in invoices:
        webhook_event_emit(
            reseller_id=reseller_id,
            event_type=event_type,
            data=_plain(ResellerInvoiceOutputSerializer(invoice).data),
            now=now,
        )


def credit_note_created_emit(*, credit_note, now: dt.datetime) -> None:
    if not reseller_subscribed(reseller_id=credit_note.reseller_id, event_type=CREDIT_NOTE_CREATED):
        return
    from billing.credit_notes.serializers import CreditNoteOutputSerializer

    webhook_event_emit(
        reseller_id=credit_note.reseller_id,
        event_type=CREDIT_NOTE_CREATED,
        data=_plain(CreditNoteOutputSerializer(credit_note).data),
        now=now,
    )
