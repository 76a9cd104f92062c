"""OpenAPI texts of billing's operations and fields: a summary, a description and examples for
every operation, a description for every field. Applied once, when the URLs are loaded
(`billing.api.urls`), through core.openapi."""

from __future__ import annotations

from billing.api import generate_serializers as gen
from billing.api import generate_views, views
from billing.api import serializers as ser
from billing.credit_notes import serializers as cn_ser
from billing.credit_notes import views as cn_views
from core.openapi import COMMON_FIELDS, apply_texts
from core.openapi import example as _ex

INVOICE = {
    "id": 1,
    "customer": 1,
    "number": "DEMO-2026-00001",
    "kind": "period",
    "replaces": None,
    "status": "finalized",
    "period_start": "2026-10-01",
    "period_end": "2026-11-01",
    "currency": "USD",
    "subtotal": "1490.00",
    "tax_rate": "19.0000",
    "tax": "283.10",
    "total": "1773.10",
    "balance_applied": "0.00",
    "amount_credited": "0.00",
    "amount_paid": "0.00",
    "balance_due": "1773.10",
    "issued_on": "2026-11-03",
    "due_on": "2026-11-17",
    "overdue": False,
    "days_overdue": 0,
    "finalized_at": "2026-11-03T09:00:00Z",
    "paid_at": None,
    "voided_at": None,
    "lines": [
        {
            "id": 11,
            "kind": "base_fee",
            "group": "Starter (graduated) - all upstreams",
            "description": "Base fee",
            "sub_account": None,
            "quantity": "1.000000000000",
            "unit": "month",
            "unit_price": "20.000000",
            "amount": "20.00",
        },
        {
            "id": 12,
            "kind": "usage",
            "group": "Starter (graduated) - all upstreams",
            "description": "Traffic, tier 2: 10 - 500 GB",
            "sub_account": None,
            "quantity": "490.000000000000",
            "unit": "GB",
            "unit_price": "3.000000",
            "amount": "1470.00",
        },
    ],
    "stale": False,
}
CUSTOMER_INVOICE = {k: v for k, v in INVOICE.items() if k not in ("customer", "stale")}
#: A month billed again after its invoice was voided.
REISSUED = {
    **INVOICE,
    "id": 7,
    "number": "DEMO-2026-00009",
    "replaces": "DEMO-2026-00001",
    "issued_on": "2026-11-20",
    "due_on": "2026-12-04",
    "finalized_at": "2026-11-20T10:00:00Z",
    "lines": [{**line, "id": line["id"] + 60} for line in INVOICE["lines"]],
}
DRAFT = {
    **INVOICE,
    "number": None,
    "status": "draft",
    "issued_on": None,
    "due_on": None,
    "finalized_at": None,
}
PLAN = {
    "id": 3,
    "code": "starter",
    "name": "Starter",
    "currency": "USD",
    "base_fee": "20.00",
    "pricing_model": "graduated",
    "unit_bytes": 1073741824,
    "minimum_charge": "0.00",
    "package_price": None,
    "package_size": None,
    "is_active": True,
    "tiers": [
        {"up_to": "10", "unit_price": "0.000000", "flat_fee": "0.00"},
        {"up_to": None, "unit_price": "3.000000", "flat_fee": "0.00"},
    ],
    "created_at": "2026-09-01T10:00:00Z",
}
SUBSCRIPTION = {
    "id": 5,
    "customer": 1,
    "plan": 3,
    "upstream_account": None,
    "starts_on": "2026-10-01",
    "ends_on": None,
    "created_at": "2026-09-28T10:00:00Z",
}
CREDIT_NOTE = {
    "id": 2,
    "number": "DEMO-CN-2026-00001",
    "invoice": 1,
    "invoice_number": "DEMO-2026-00001",
    "customer": 1,
    "currency": "USD",
    "reason": "order_change",
    "memo": "",
    "subtotal": "50.42",
    "tax_rate": "19.0000",
    "tax": "9.58",
    "total": "60.00",
    "issued_on": "2026-11-10",
    "created_at": "2026-11-10T12:00:00Z",
    "lines": [
        {
            "id": 4,
            "invoice_line": None,
            "description": "Credit",
            "amount": "50.42",
            "tax": "9.58",
            "total": "60.00",
        }
    ],
}


CURRENT_USAGE = {
    "timezone": "UTC",
    "period_start": "2026-11-01",
    "period_end": "2026-12-01",
    "as_of": "2026-11-29T22:09:11Z",
    "currency": "USD",
    "subscriptions": [
        {
            "id": 1,
            "plan_code": "starter",
            "plan_name": "Starter",
            "active_start": "2026-11-01",
            "active_end": "2026-12-01",
            "unit_bytes": 1073741824,
            "bytes": 107374182400,
            "gb": "100.000",
            "estimated_charge": "290.00",
            "lines": [
                {
                    "kind": "base_fee",
                    "description": "Base fee",
                    "quantity": "1.000000000000",
                    "unit": "month",
                    "unit_price": "20.000000",
                    "amount": "20.00",
                },
                {
                    "kind": "usage",
                    "description": "Traffic, tier 2: 10 - 500 GB",
                    "quantity": "90.000000000000",
                    "unit": "GB",
                    "unit_price": "3.000000",
                    "amount": "270.00",
                },
            ],
        }
    ],
    "sub_accounts": [
        {
            "id": 1,
            "label": "Acme SIM00001",
            "upstream_id": "SIM00001",
            "bytes": 107374182400,
            "remaining_bytes": None,
            "total_bytes": None,
            "remaining_as_of": None,
        }
    ],
    "unbilled_bytes": 0,
    "adjustments": "0.00",
    "estimated_subtotal": "290.00",
    "estimated_tax": "55.10",
    "estimated_total": "345.10",
}


_OPERATIONS = [
    # plans
    (views.PlanListCreateView, "get", "List plans", None, [_ex("Plans", PLAN)]),
    (
        views.PlanListCreateView,
        "post",
        "Create a plan",
        None,
        [
            _ex(
                "Graduated",
                {
                    "code": "starter",
                    "name": "Starter",
                    "currency": "USD",
                    "base_fee": "20.00",
                    "pricing_model": "graduated",
                    "tiers": [
                        {"up_to": "10", "unit_price": "0"},
                        {"up_to": None, "unit_price": "3.00"},
                    ],
                },
                request=True,
            ),
            _ex("Created", PLAN, status="201"),
        ],
    ),
    (
        views.PlanDetailView,
        "get",
        "Get a plan",
        "One of your plans with its tiers.",
        [_ex("Plan", PLAN)],
    ),
    (
        views.PlanDetailView,
        "patch",
        "Rename or retire a plan",
        None,
        [
            _ex("Retire", {"is_active": False}, request=True),
            _ex("Plan", {**PLAN, "is_active": False}),
        ],
    ),
    # subscriptions
    (
        views.SubscriptionListCreateView,
        "get",
        "List subscriptions",
        None,
        [_ex("Subscriptions", SUBSCRIPTION)],
    ),
    (
        views.SubscriptionListCreateView,
        "post",
        "Subscribe a customer",
        None,
        [
            _ex("Subscribe", {"customer": 1, "plan": 3, "starts_on": "2026-10-01"}, request=True),
            _ex("Created", SUBSCRIPTION, status="201"),
        ],
    ),
    (
        views.SubscriptionDetailView,
        "get",
        "Get a subscription",
        "One of your subscriptions.",
        [_ex("Subscription", SUBSCRIPTION)],
    ),
    (
        views.SubscriptionDetailView,
        "patch",
        "End a subscription",
        None,
        [
            _ex("End", {"ends_on": "2026-12-01"}, request=True),
            _ex("Subscription", {**SUBSCRIPTION, "ends_on": "2026-12-01"}),
        ],
    ),
    (views.SubscriptionDetailView, "delete", "Delete a subscription", None, []),
    # reseller invoices
    (views.ResellerInvoiceListView, "get", "List invoices", None, [_ex("Invoices", INVOICE)]),
    (
        views.ResellerInvoiceDetailView,
        "get",
        "Get an invoice",
        "One of your invoices (drafts included) with its lines. A draft says whether it is "
        "`stale`: whether finalizing it now would issue other figures.",
        [
            _ex("Invoice", INVOICE),
            _ex("Reissued", REISSUED),
            _ex("Stale draft", {**DRAFT, "stale": True}),
        ],
    ),
    (views.ResellerInvoiceDetailView, "delete", "Discard a draft", None, []),
    (views.ResellerInvoicePdfView, "get", "Download an invoice PDF", None, []),
    (
        views.ResellerInvoiceFinalizeView,
        "post",
        "Finalize a draft",
        None,
        [_ex("Without email", {"send_email": False}, request=True), _ex("Finalized", INVOICE)],
    ),
    (
        views.ResellerInvoiceVoidView,
        "post",
        "Void an invoice",
        None,
        [
            _ex("Void", {"reason": "duplicate", "send_email": True}, request=True),
            _ex(
                "Voided",
                {
                    **INVOICE,
                    "status": "void",
                    "voided_at": "2026-11-05T10:00:00Z",
                    "balance_due": "0.00",
                },
            ),
        ],
    ),
    (
        views.ResellerInvoiceMarkPaidView,
        "post",
        "Mark an invoice paid",
        None,
        [
            _ex("Paid", {"note": "wire 123"}, request=True),
            _ex(
                "Paid",
                {
                    **INVOICE,
                    "status": "paid",
                    "paid_at": "2026-11-08T10:00:00Z",
                    "amount_paid": "1773.10",
                    "balance_due": "0.00",
                },
            ),
        ],
    ),
    (
        generate_views.InvoiceGenerateView,
        "post",
        "Bill an ended month",
        None,
        [
            _ex(
                "One customer, issued",
                {
                    "period": "2026-10",
                    "finalize": True,
                    "queued": False,
                    "invoices": [INVOICE],
                    "voided": [],
                    "failed": [],
                    "skipped": [],
                },
            ),
            _ex(
                "Nothing billable",
                {
                    "period": "2026-10",
                    "finalize": True,
                    "queued": False,
                    "invoices": [],
                    "voided": [],
                    "failed": [],
                    "skipped": [
                        {
                            "customer": 8,
                            "code": "nothing_billable",
                            "message": "Customer 8 has no subscription, usage or adjustment "
                            "in 2026-10: no invoice.",
                        }
                    ],
                },
            ),
        ],
    ),
    (
        generate_views.CustomerUsageCurrentView,
        "get",
        "A customer's current month",
        None,
        [_ex("November so far", CURRENT_USAGE)],
    ),
    # customer invoices
    (views.InvoiceListView, "get", "List my invoices", None, [_ex("Invoices", CUSTOMER_INVOICE)]),
    (
        views.InvoiceDetailView,
        "get",
        "Get my invoice",
        "One of the customer's issued invoices (a draft is 404).",
        [_ex("Invoice", CUSTOMER_INVOICE)],
    ),
    (
        views.InvoicePdfView,
        "get",
        "Download my invoice PDF",
        "The invoice's PDF: the stored file when finalized, with a PAID or VOID watermark after.",
        [],
    ),
    (
        views.CurrentUsageView,
        "get",
        "My current month",
        None,
        [_ex("November so far", CURRENT_USAGE)],
    ),
    # credit notes
    (
        cn_views.ResellerInvoiceCreditNotesView,
        "get",
        "List an invoice's credit notes",
        "The credit notes issued against one of your invoices, ordered by id.",
        [_ex("Credit notes", CREDIT_NOTE)],
    ),
    (
        cn_views.ResellerInvoiceCreditNotesView,
        "post",
        "Issue a credit note",
        None,
        [
            _ex("Partial", {"amount": "60.00", "reason": "order_change"}, request=True),
            _ex("Created", CREDIT_NOTE, status="201"),
        ],
    ),
    (
        cn_views.ResellerCreditNoteListView,
        "get",
        "List credit notes",
        "Every credit note of yours, ordered by id.",
        [_ex("Credit notes", CREDIT_NOTE)],
    ),
    (
        cn_views.ResellerCreditNoteDetailView,
        "get",
        "Get a credit note",
        "One of your credit notes with its lines.",
        [_ex("Credit note", CREDIT_NOTE)],
    ),
    (
        cn_views.ResellerCreditNotePdfView,
        "get",
        "Download a credit note PDF",
        "The credit note's stored PDF.",
        [],
    ),
    (
        cn_views.InvoiceCreditNotesView,
        "get",
        "List my invoice's credit notes",
        "The credit notes of one of the customer's invoices.",
        [_ex("Credit notes", CREDIT_NOTE)],
    ),
    (
        cn_views.CreditNoteListView,
        "get",
        "List my credit notes",
        "The customer's credit notes, ordered by id.",
        [_ex("Credit notes", CREDIT_NOTE)],
    ),
    (
        cn_views.CreditNoteDetailView,
        "get",
        "Get my credit note",
        "One of the customer's credit notes.",
        [_ex("Credit note", CREDIT_NOTE)],
    ),
    (
        cn_views.CreditNotePdfView,
        "get",
        "Download my credit note PDF",
        "The credit note's stored PDF.",
        [],
    ),
]

_COMMON = {
    **COMMON_FIELDS,
    "code": "Your short code, unique among your plans.",
    "name": "Display name.",
    "plan": "The plan's id.",
    "invoice": "The invoice's id.",
    "invoice_number": "The credited invoice's number.",
    "number": "The document number, from your gapless yearly sequence.",
    "status": "Lifecycle status.",
    "currency": "ISO 4217 code; every amount of the object is in it.",
    "issued_on": "Issue date (your timezone); null while a draft.",
    "due_on": "Payment due date; null while a draft.",
    "finalized_at": "When it was finalized (UTC).",
    "paid_at": "When it was paid: the moment the payment that brought its balance due to 0 "
    "was received (null while anything is due).",
    "voided_at": "When it was voided.",
    "lines": "The lines, in printed order.",
    "kind": "The line's kind.",
    "description": "The line's text, as printed.",
    "sub_account": "The sub-account the line is for, or null.",
    "unit": "Unit of `quantity`: GB, month or package.",
    "unit_price": "Price per unit, a decimal string (up to 6 places).",
    "quantity": "In `unit`.",
    "amount": "Decimal string in the currency.",
    "flat_fee": "Fixed fee of the tier, a decimal string in the plan's currency.",
    "base_fee": "Monthly base fee, a decimal string in the plan's currency.",
    "pricing_model": "`graduated` (each tier prices its part), `volume` (the reached tier "
    "prices everything) or `package`.",
    "tiers": "Price tiers, ascending; the last has no upper bound.",
    "package_price": "Price of one package (package pricing), else null.",
    "is_active": "False: retired, no new subscriptions.",
    "reason": "`duplicate`, `fraudulent`, `order_change`, `product_unsatisfactory` or empty.",
    "memo": "Free text printed on the credit note.",
    "period_start": "First day of the month billed.",
    "as_of": "When this was computed.",
    "subscriptions": "Per subscription: usage so far and its charge.",
    "sub_accounts": "Per sub-account: usage so far and upstream traffic left.",
    "estimated_subtotal": "Charge so far, before tax.",
    "estimated_tax": "Tax on it, at the customer's rate.",
    "estimated_total": "Subtotal plus tax.",
    "label": "The sub-account's label.",
    "upstream_id": "Its id at the upstream provider.",
    "plan_code": "The plan's code.",
    "plan_name": "The plan's name.",
    "bytes": "Traffic so far, in bytes.",
    "subtotal": "Sum of the lines, a decimal string in the currency.",
    "tax": "Tax, a decimal string in the currency.",
    "total": "Subtotal plus tax, a decimal string in the currency.",
    "finalize": "Whether the invoices were issued rather than drafted.",
    "failed": "Customers that could not be billed, with the error.",
    "message": "Why, in words.",
    "tax_rate": "A percent: 20.0000 = 20 %.",
}

_SERIALIZERS = [
    ser.PlanTierInputSerializer,
    ser.PlanCreateInputSerializer,
    ser.PlanUpdateInputSerializer,
    ser.PlanTierOutputSerializer,
    ser.PlanOutputSerializer,
    ser.SubscriptionCreateInputSerializer,
    ser.SubscriptionUpdateInputSerializer,
    ser.SubscriptionOutputSerializer,
    ser.InvoiceLineOutputSerializer,
    ser.InvoiceOutputSerializer,
    ser.ResellerInvoiceOutputSerializer,
    ser.CurrentUsageLineOutputSerializer,
    ser.CurrentUsageSubscriptionOutputSerializer,
    ser.CurrentUsageSubAccountOutputSerializer,
    ser.CurrentUsageOutputSerializer,
    gen.InvoiceGenerateOutputSerializer,
    gen.GenerateFailureSerializer,
    gen.GenerateSkippedSerializer,
    gen.InvoicePreviewLineSerializer,
    gen.InvoicePreviewOutputSerializer,
    cn_ser.CreditNoteLineInputSerializer,
    cn_ser.CreditNoteCreateInputSerializer,
    cn_ser.CreditNoteLineOutputSerializer,
    cn_ser.CreditNoteOutputSerializer,
]


apply_texts(_OPERATIONS, [(_SERIALIZERS, _COMMON)])
