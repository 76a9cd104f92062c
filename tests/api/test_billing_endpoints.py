"""Billing endpoints with real numbers: plans, subscriptions, invoices, PDFs, current usage."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from pypdf import PdfReader

from accounts.api_keys import api_key_create
from billing.credit_notes.services import credit_note_create
from billing.invoicing.cycle import invoice_create_draft
from billing.invoicing.issuing import invoice_issue
from billing.models import Invoice, InvoiceEvent, Plan, Subscription
from billing.money import quantize_money
from tests import factories
from tests.api.conftest import key_client
from tests.api.schema_check import assert_matches_schema
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage
from usage.models import LedgerSnapshot

R = "/api/v1/reseller"
GIB = 1_073_741_824
OCT = dt.date(2026, 10, 1)
AFTER_OCTOBER = dt.datetime(2026, 11, 3, 12, tzinfo=dt.UTC)
GRADUATED = {
    "code": "pro",
    "name": "Pro",
    "base_fee": "10.00",
    "pricing_model": "graduated",
    "tiers": [
        {"up_to": "100", "unit_price": "0"},
        {"up_to": None, "unit_price": "2.50"},
    ],
}


def ok(response, status=200):
    assert response.status_code == status, response.content
    assert_matches_schema(response)
    return response.json()


def error(response, status, code):
    assert response.status_code == status, response.content
    assert_matches_schema(response)
    body = response.json()
    assert body["code"] == code, body
    return body


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


@pytest.fixture
def customer_api(customer):
    return key_client(api_key_create(reseller=customer.reseller, customer=customer, name="c")[1])


@pytest.fixture
def october(reseller, customer, sub_account, settings, tmp_path):
    """10.00 base + 0-100 GB free + 2.50/GB, tax 20 %; 5 GiB a day all October = 155 GiB:
    10.00 + 55 x 2.50 = 147.50, tax 29.50, total 177.00."""
    settings.MEDIA_ROOT = tmp_path
    customer.tax_rate = Decimal("20")
    customer.save()
    SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=reseller, name="Pro"))
    add_usage(sub_account, OCT, 31, 5)
    return customer


# --- plans ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_graduated_plan_is_created_with_its_tiers(reseller_api, reseller):
    body = ok(reseller_api.post(f"{R}/plans/", GRADUATED), 201)
    assert body["code"] == "pro"
    assert body["currency"] == "USD"
    assert body["base_fee"] == "10.000000"
    assert body["unit_bytes"] == GIB
    assert body["tiers"] == [
        {"up_to": "100.000000", "unit_price": "0.000000", "flat_fee": "0.000000"},
        {"up_to": None, "unit_price": "2.500000", "flat_fee": "0.000000"},
    ]
    plan = Plan.objects.get(pk=body["id"])
    assert plan.reseller == reseller
    assert [(t.up_to, t.unit_price) for t in plan.tiers.order_by("position")] == [
        (Decimal("100"), Decimal("0")),
        (None, Decimal("2.5")),
    ]
    listed = ok(reseller_api.get(f"{R}/plans/"))
    assert listed["count"] == 1 and listed["results"][0] == body
    assert ok(reseller_api.get(f"{R}/plans/{plan.pk}/")) == body


@pytest.mark.django_db
def test_package_plan_is_created_without_tiers(reseller_api):
    body = ok(
        reseller_api.post(
            f"{R}/plans/",
            {
                "code": "pack-50",
                "name": "50 GB packs",
                "pricing_model": "package",
                "package_size": "50",
                "package_price": "40.00",
                "minimum_charge": "40",
                "unit_bytes": 1_000_000_000,
            },
        ),
        201,
    )
    assert (body["package_size"], body["package_price"], body["tiers"]) == (
        "50.000000",
        "40.000000",
        [],
    )
    assert body["unit_bytes"] == 1_000_000_000


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "code", "fields"),
    [
        (
            {"tiers": [{"up_to": "100", "unit_price": "0"}, {"up_to": "50", "unit_price": "1"}]},
            "invalid_plan",
            {"tiers[1].up_to"},
        ),
        ({"tiers": []}, "invalid_plan", {"tiers"}),
        ({"tiers": [{"up_to": "0", "unit_price": "1"}, {"unit_price": "1"}]}, "invalid_plan",
         {"tiers[0].up_to"}),
        ({"tiers": [{"up_to": "-1", "unit_price": "1"}]}, "invalid_plan",
         {"tiers[0].up_to"}),
        ({"tiers": [{"up_to": "abc", "unit_price": "1"}]}, "invalid_amount", {"tiers"}),
        ({"tiers": [{"up_to": "1e3", "unit_price": "1"}]}, "invalid_amount", {"tiers"}),
        ({"base_fee": "1_0"}, "invalid_amount", {"base_fee"}),
        ({"package_size": "10"}, "invalid_plan", {"package_size"}),
        ({"pricing_model": "package"}, "invalid_plan",
         {"tiers", "package_size", "package_price"}),
        ({"currency": "XYZ"}, "invalid_plan", {"currency"}),
        ({"currency": "JPY", "base_fee": "10.5"}, "invalid_plan", {"base_fee"}),
        ({"base_fee": "-1"}, "invalid_plan", {"base_fee"}),
        ({"colour": "red"}, "validation_error", {"colour"}),
    ],
)  # fmt: skip
def test_plans_that_cannot_rate_are_refused_naming_the_field(reseller_api, changes, code, fields):
    body = error(reseller_api.post(f"{R}/plans/", {**GRADUATED, **changes}), 400, code)
    assert set(body["extra"]["fields"]) == fields
    assert not Plan.objects.exists()


@pytest.mark.django_db
def test_a_plan_code_is_unique_per_reseller_only(reseller_api):
    ok(reseller_api.post(f"{R}/plans/", GRADUATED), 201)
    body = error(reseller_api.post(f"{R}/plans/", GRADUATED), 400, "invalid_plan")
    assert body["extra"]["fields"] == {"code": ["The reseller already has a plan with code 'pro'."]}
    other = key_client(api_key_create(reseller=factories.ResellerFactory(), name="other")[1])
    ok(other.post(f"{R}/plans/", GRADUATED), 201)


@pytest.mark.django_db
def test_a_plan_is_renamed_or_deactivated_but_its_prices_are_fixed(reseller_api):
    plan = ok(reseller_api.post(f"{R}/plans/", GRADUATED), 201)
    body = ok(reseller_api.patch(f"{R}/plans/{plan['id']}/", {"name": "Pro 2026"}))
    assert body == {**plan, "name": "Pro 2026"}
    body = ok(reseller_api.patch(f"{R}/plans/{plan['id']}/", {"is_active": False}))
    assert body == {**plan, "name": "Pro 2026", "is_active": False}
    body = error(
        reseller_api.patch(
            f"{R}/plans/{plan['id']}/", {"name": "Cheap", "base_fee": "1", "tiers": []}
        ),
        400,
        "plan_price_immutable",
    )
    fixed = ["Fixed once the plan is created: create a new plan, end the subscriptions and "
             "subscribe again."]  # fmt: skip
    assert body["extra"]["fields"] == {"base_fee": fixed, "tiers": fixed}
    stored = Plan.objects.get()
    assert (stored.name, stored.base_fee, stored.tiers.count()) == ("Pro 2026", Decimal("10"), 2)


# --- subscriptions --------------------------------------------------------------------------


@pytest.mark.django_db
def test_subscription_is_created_ended_and_refused_on_overlap(reseller_api, reseller, customer):
    plan = PlanFactory(reseller=reseller)
    body = ok(
        reseller_api.post(
            f"{R}/subscriptions/",
            {"customer": customer.pk, "plan": plan.pk, "starts_on": "2026-10-01"},
        ),
        201,
    )
    assert body["ends_on"] is None and body["upstream_account"] is None
    clash = error(
        reseller_api.post(
            f"{R}/subscriptions/",
            {
                "customer": customer.pk,
                "plan": plan.pk,
                "starts_on": "2026-12-01",
                "upstream_account": factories.UpstreamAccountFactory(reseller=reseller).pk,
            },
        ),
        400,
        "subscription_overlap",
    )
    assert list(clash["extra"]["fields"]) == ["starts_on"]
    ended = ok(reseller_api.patch(f"{R}/subscriptions/{body['id']}/", {"ends_on": "2026-12-01"}))
    assert ended["ends_on"] == "2026-12-01"
    ok(
        reseller_api.post(
            f"{R}/subscriptions/",
            {"customer": customer.pk, "plan": plan.pk, "starts_on": "2026-12-01"},
        ),
        201,
    )
    assert Subscription.objects.count() == 2


@pytest.mark.django_db
def test_subscription_in_another_currency_or_ending_before_it_starts_is_refused(
    reseller_api, reseller, customer
):
    euro = PlanFactory(reseller=reseller, currency="EUR")
    body = error(
        reseller_api.post(
            f"{R}/subscriptions/",
            {"customer": customer.pk, "plan": euro.pk, "starts_on": "2026-10-01"},
        ),
        400,
        "invalid_subscription",
    )
    assert body["extra"]["fields"] == {
        "plan": ["The plan is priced in EUR; the customer is billed in USD."]
    }
    subscription = SubscriptionFactory(customer=customer, plan=PlanFactory(reseller=reseller))
    body = error(
        reseller_api.patch(f"{R}/subscriptions/{subscription.pk}/", {"ends_on": "2025-12-01"}),
        400,
        "invalid_subscription",
    )
    assert list(body["extra"]["fields"]) == ["ends_on"]
    body = error(
        reseller_api.patch(f"{R}/subscriptions/{subscription.pk}/", {"plan": euro.pk}),
        400,
        "validation_error",
    )
    assert body["extra"]["fields"] == {"plan": ["This field cannot be changed."]}
    assert Subscription.objects.get().ends_on is None


@pytest.mark.django_db
def test_a_subscription_never_billed_is_deleted_and_a_billed_one_is_kept(
    reseller_api, reseller, customer, october
):
    [billed] = Subscription.objects.filter(customer=october)
    spare = SubscriptionFactory(
        customer=factories.CustomerFactory(reseller=reseller), plan=billed.plan
    )
    assert reseller_api.delete(f"{R}/subscriptions/{spare.pk}/").status_code == 204
    error(reseller_api.get(f"{R}/subscriptions/{spare.pk}/"), 404, "not_found")
    issued, _ = invoice_issue(
        customer=october, period_start=OCT, now=AFTER_OCTOBER, send_email=False
    )
    body = error(reseller_api.delete(f"{R}/subscriptions/{billed.pk}/"), 409, "subscription_billed")
    assert body["extra"] == {"invoices": [issued.number]}
    # Cancelled instead: ends on its start, never active.
    cancelled = ok(reseller_api.patch(f"{R}/subscriptions/{billed.pk}/", {"ends_on": "2026-01-01"}))
    assert cancelled["ends_on"] == cancelled["starts_on"] == "2026-01-01"
    foreign = SubscriptionFactory()
    assert error(reseller_api.delete(f"{R}/subscriptions/{foreign.pk}/"), 404, "not_found") == (
        error(reseller_api.delete(f"{R}/subscriptions/987654/"), 404, "not_found")
    )
    assert Subscription.objects.filter(pk=foreign.pk).exists()


@pytest.mark.django_db
def test_deleting_a_subscription_re_rates_the_draft_that_held_it(reseller_api, october):
    draft, _ = invoice_create_draft(customer=october, period_start=OCT, now=AFTER_OCTOBER)
    [subscription] = Subscription.objects.filter(customer=october)
    assert reseller_api.delete(f"{R}/subscriptions/{subscription.pk}/").status_code == 204
    # Usage without a subscription is recorded but bills nothing: the draft stays, at 0.
    body = ok(reseller_api.get(f"{R}/invoices/{draft.pk}/"))
    assert (body["lines"], body["total"]) == ([], "0.00")


# --- invoices: reseller ---------------------------------------------------------------------


@pytest.mark.django_db
def test_draft_reads_with_its_lines_and_totals_for_the_reseller_only(
    reseller_api, customer_api, october
):
    draft, _ = invoice_create_draft(customer=october, period_start=OCT, now=AFTER_OCTOBER)
    listed = ok(reseller_api.get(f"{R}/invoices/"))
    assert listed["count"] == 1
    body = ok(reseller_api.get(f"{R}/invoices/{draft.pk}/"))
    # `stale` is worked out for one draft (its detail), not for every draft of a list
    assert (listed["results"][0].pop("stale"), body.pop("stale")) == (None, False)
    assert listed["results"][0] == body
    assert {k: body[k] for k in ("status", "number", "customer", "currency")} == {
        "status": "draft",
        "number": None,
        "customer": october.pk,
        "currency": "USD",
    }
    assert (body["subtotal"], body["tax_rate"], body["tax"], body["total"]) == (
        "147.50",
        "20.0000",
        "29.50",
        "177.00",
    )
    assert (body["period_start"], body["period_end"]) == ("2026-10-01", "2026-11-01")
    lines = body["lines"]
    assert [(ln["kind"], ln["quantity"], ln["unit_price"], ln["amount"]) for ln in lines] == [
        ("base_fee", "1.000000000000", "10.000000", "10.00"),
        ("usage", "100.000000000000", "0.000000", "0.00"),
        ("usage", "55.000000000000", "2.500000", "137.50"),
    ]  # fmt: skip
    # Customers never see drafts: not listed, and the id answers like a missing one.
    assert ok(customer_api.get("/api/v1/invoices/"))["count"] == 0
    missing = error(customer_api.get("/api/v1/invoices/987654/"), 404, "not_found")
    for url in (f"/api/v1/invoices/{draft.pk}/", f"/api/v1/invoices/{draft.pk}/pdf/"):
        assert error(customer_api.get(url), 404, "not_found") == missing


@pytest.mark.django_db
def test_finalize_pay_and_void_go_through_the_invoicing_services(
    reseller_api, reseller_key, customer_api, october
):
    draft, _ = invoice_create_draft(customer=october, period_start=OCT, now=AFTER_OCTOBER)
    url = f"{R}/invoices/{draft.pk}"
    body = ok(reseller_api.post(f"{url}/finalize/", {"send_email": False}))
    assert body["status"] == "finalized"
    assert body["number"] == f"{october.reseller.invoice_prefix}-{body['issued_on'][:4]}-00001"
    assert body["total"] == "177.00" and body["due_on"] is not None
    assert error(reseller_api.post(f"{url}/finalize/"), 409, "invoice_not_draft")["extra"] == {
        "status": "finalized"
    }
    # The customer now sees it, exactly as the reseller does minus the customer field and
    # the drafts' `stale` (false once issued).
    mine = ok(customer_api.get("/api/v1/invoices/"))
    assert mine["count"] == 1
    as_customer = ok(customer_api.get(f"/api/v1/invoices/{draft.pk}/"))
    assert body["stale"] is False
    assert as_customer == {k: v for k, v in body.items() if k not in ("customer", "stale")}
    paid = ok(reseller_api.post(f"{url}/mark-paid/", {"note": "wire 42"}))
    assert paid["status"] == "paid" and paid["paid_at"] is not None
    refused = error(reseller_api.post(f"{url}/void/", {}), 409, "invalid_transition")
    assert refused["extra"] == {"from": "paid", "to": "void"}
    events = list(
        InvoiceEvent.objects.filter(invoice=draft).order_by("pk").values_list("to_status", "actor")
    )
    prefix = reseller_key.split("_")[1]
    assert events == [
        ("draft", "system"),
        ("finalized", f"api-key {prefix}"),
        ("paid", f"api-key {prefix}"),
    ]
    assert InvoiceEvent.objects.get(invoice=draft, to_status="paid").note == "wire 42"


@pytest.mark.django_db
def test_a_draft_cannot_be_paid_or_voided_and_an_issued_one_can_be_voided(
    reseller_api, customer_api, october
):
    draft, _ = invoice_create_draft(customer=october, period_start=OCT, now=AFTER_OCTOBER)
    for action in ("mark-paid", "void"):
        error(reseller_api.post(f"{R}/invoices/{draft.pk}/{action}/"), 409, "invalid_transition")
    ok(reseller_api.post(f"{R}/invoices/{draft.pk}/finalize/", {"send_email": False}))
    voided = ok(reseller_api.post(f"{R}/invoices/{draft.pk}/void/", {"reason": "duplicate"}))
    assert voided["status"] == "void" and voided["number"] is not None
    assert ok(customer_api.get(f"/api/v1/invoices/{draft.pk}/"))["status"] == "void"
    assert "VOID" in pdf_text(customer_api.get(f"/api/v1/invoices/{draft.pk}/pdf/").content)
    body = error(
        reseller_api.post(f"{R}/invoices/{draft.pk}/void/", {"reason": 1, "x": 1}),
        400,
        "validation_error",
    )
    assert body["extra"]["fields"] == {"x": ["Unknown field."]}


@pytest.mark.django_db
def test_delete_discards_a_draft_only(reseller_api, customer_api, october):
    draft, _ = invoice_create_draft(customer=october, period_start=OCT, now=AFTER_OCTOBER)
    response = reseller_api.delete(f"{R}/invoices/{draft.pk}/")
    assert response.status_code == 204 and response.content == b""
    assert not Invoice.objects.filter(pk=draft.pk).exists()
    error(reseller_api.get(f"{R}/invoices/{draft.pk}/"), 404, "not_found")
    issued, _ = invoice_issue(
        customer=october, period_start=OCT, now=AFTER_OCTOBER, send_email=False
    )
    body = error(reseller_api.delete(f"{R}/invoices/{issued.pk}/"), 409, "invoice_not_draft")
    assert body["extra"] == {"status": "finalized"}
    foreign = factories.CustomerFactory()
    SubscriptionFactory(customer=foreign)
    theirs, _ = invoice_create_draft(customer=foreign, period_start=OCT, now=AFTER_OCTOBER)
    error(reseller_api.delete(f"{R}/invoices/{theirs.pk}/"), 404, "not_found")
    assert Invoice.objects.filter(pk=theirs.pk).exists()
    # Customers cannot delete anything.
    assert customer_api.delete(f"/api/v1/invoices/{issued.pk}/").status_code == 405


@pytest.mark.django_db
def test_invoices_show_the_amount_credited_and_the_balance_due(reseller_api, customer_api, october):
    issued, _ = invoice_issue(
        customer=october, period_start=OCT, now=AFTER_OCTOBER, send_email=False
    )
    url = f"{R}/invoices/{issued.pk}/"
    before = ok(reseller_api.get(url))
    assert (before["total"], before["amount_credited"], before["balance_due"]) == (
        "177.00",
        "0.00",
        "177.00",
    )
    note = credit_note_create(invoice=issued, now=AFTER_OCTOBER, amount="60.00", send_email=False)
    credited = quantize_money(note.total, "USD")
    assert credited > 0
    expected = (format(credited, "f"), format(Decimal("177.00") - credited, "f"))
    views = [
        ok(reseller_api.get(url)),
        ok(reseller_api.get(f"{R}/invoices/"))["results"][0],
        ok(customer_api.get(f"/api/v1/invoices/{issued.pk}/")),
        ok(customer_api.get("/api/v1/invoices/"))["results"][0],
    ]
    for body in views:
        assert (body["amount_credited"], body["balance_due"]) == expected
    paid = ok(reseller_api.post(f"{url}mark-paid/", {}))
    assert (paid["amount_credited"], paid["balance_due"]) == (expected[0], "0.00")


@pytest.mark.django_db
def test_invoice_list_filters_by_period_status_and_customer(reseller_api, reseller, october):
    other = factories.CustomerFactory(reseller=reseller)
    SubscriptionFactory(customer=other, plan=PlanFactory(reseller=reseller))
    issued, _ = invoice_issue(
        customer=october, period_start=OCT, now=AFTER_OCTOBER, send_email=False
    )
    sept, _ = invoice_create_draft(
        customer=other, period_start=dt.date(2026, 9, 1), now=AFTER_OCTOBER
    )
    octo, _ = invoice_create_draft(customer=other, period_start=OCT, now=AFTER_OCTOBER)

    def ids(query):
        return [row["id"] for row in ok(reseller_api.get(f"{R}/invoices/?{query}"))["results"]]

    assert ids("") == [issued.pk, sept.pk, octo.pk]
    assert ids("period=2026-10") == [issued.pk, octo.pk]
    assert ids("status=draft") == [sept.pk, octo.pk]
    assert ids(f"customer={other.pk}&period=2026-09") == [sept.pk]
    assert ids("status=paid") == []
    assert ids("limit=1&offset=1") == [sept.pk]
    assert ids("format=json&status=finalized") == [issued.pk]  # DRF's renderer switch
    # A customer that is not the caller's answers like a missing one.
    missing = error(reseller_api.get(f"{R}/invoices/?customer=987654"), 404, "not_found")
    foreign = factories.CustomerFactory()
    assert error(reseller_api.get(f"{R}/invoices/?customer={foreign.pk}"), 404, "not_found") == (
        missing
    )
    # (schemathesis found that year 0 crashed period parsing: refused as malformed now.)
    for period in ("0000-01", "2026-1", "202610"):
        body = error(reseller_api.get(f"{R}/invoices/?period={period}"), 400, "validation_error")
        assert body["extra"]["fields"] == {"period": ["Give the period as YYYY-MM."]}
    body = error(reseller_api.get(f"{R}/invoices/?period=2026-13&state=x"), 400, "validation_error")
    assert body["extra"]["fields"] == {
        "period": ["Give the period as YYYY-MM."],
        "state": ["Unknown field."],
    }  # fmt: skip


@pytest.mark.django_db
@pytest.mark.slow
def test_invoice_lists_query_the_lines_once_however_many_invoices(
    reseller_api, customer_api, october
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count(api, url):
        with CaptureQueriesContext(connection) as ctx:
            assert api.get(url).status_code == 200
        return len(ctx.captured_queries)

    invoice_issue(customer=october, period_start=OCT, now=AFTER_OCTOBER, send_email=False)
    # The first request of a key also records its `last_used_at`: warm both keys up.
    count(reseller_api, f"{R}/invoices/"), count(customer_api, "/api/v1/invoices/")
    one = (count(reseller_api, f"{R}/invoices/"), count(customer_api, "/api/v1/invoices/"))
    for month in range(1, 10):
        invoice_issue(
            customer=october,
            period_start=dt.date(2026, month, 1),
            now=AFTER_OCTOBER,
            send_email=False,
        )
    assert Invoice.objects.count() == 10
    for invoice in Invoice.objects.order_by("pk")[:3]:  # credited amounts: in the same query
        credit_note_create(invoice=invoice, now=AFTER_OCTOBER, amount="5.00", send_email=False)
    ten = (count(reseller_api, f"{R}/invoices/"), count(customer_api, "/api/v1/invoices/"))
    assert ten == one


@pytest.mark.django_db
def test_the_pdf_is_served_to_the_customer_and_drafts_render_for_the_reseller(
    reseller_api, customer_api, october
):
    draft, _ = invoice_create_draft(customer=october, period_start=OCT, now=AFTER_OCTOBER)
    response = reseller_api.get(f"{R}/invoices/{draft.pk}/pdf/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'inline; filename="draft-{draft.pk}.pdf"'
    assert_matches_schema(response)
    assert "DRAFT" in pdf_text(response.content)
    issued = ok(reseller_api.post(f"{R}/invoices/{draft.pk}/finalize/", {"send_email": False}))
    response = customer_api.get(f"/api/v1/invoices/{draft.pk}/pdf/", HTTP_ACCEPT="application/pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert_matches_schema(response)
    # The stored file, the one that was emailed.
    with Invoice.objects.get(pk=draft.pk).pdf.open("rb") as fh:
        assert response.content == fh.read()
    text = pdf_text(response.content)
    assert issued["number"] in text and "177.00" in text
    # Errors stay JSON even to a client that only accepts PDF.
    missing = customer_api.get("/api/v1/invoices/987654/pdf/", HTTP_ACCEPT="application/pdf")
    error(missing, 404, "not_found")


# --- customer scope: current usage ----------------------------------------------------------


@pytest.mark.django_db
def test_current_usage_is_rated_like_the_invoice_it_becomes(
    customer_api, reseller, october, sub_account, monkeypatch, settings
):
    """November to the 20th: 6 GiB a day on the 1st-19th = 114 GiB -> 10.00 + 14 x 2.50 =
    45.00, tax 9.00, total 54.00. A BytesFlows sub-account reports 3 of 10 GiB left."""
    nov = dt.date(2026, 11, 1)
    add_usage(sub_account, nov, 19, 6)
    bf_upstream = factories.UpstreamAccountFactory(
        reseller=reseller, provider="bytesflows", credentials={}
    )
    bf = factories.SubAccountFactory(customer=october, upstream_account=bf_upstream)
    for hours_ago, available in ((30, 8 * GIB), (2, 3 * GIB)):
        LedgerSnapshot.objects.create(
            sub_account=bf,
            taken_at=dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC) - dt.timedelta(hours=hours_ago),
            total_traffic=10 * GIB,
            available_traffic=available,
            balance=Decimal("0"),
        )
    now = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
    monkeypatch.setattr("django.utils.timezone.now", lambda: now)
    body = ok(customer_api.get("/api/v1/usage/current/"))
    subscription = Subscription.objects.get(customer=october)
    assert {k: body[k] for k in ("timezone", "period_start", "period_end", "currency")} == {
        "timezone": "UTC",
        "period_start": "2026-11-01",
        "period_end": "2026-12-01",
        "currency": "USD",
    }
    assert body["as_of"] == "2026-11-20T12:00:00Z"
    [sub] = body["subscriptions"]
    assert {k: sub[k] for k in ("id", "plan_name", "bytes", "gb", "estimated_charge")} == {
        "id": subscription.pk,
        "plan_name": "Pro",
        "bytes": 114 * GIB,
        "gb": "114.000",
        "estimated_charge": "45.00",
    }
    assert [(ln["kind"], ln["amount"]) for ln in sub["lines"]] == [
        ("base_fee", "10.00"),
        ("usage", "0.00"),
        ("usage", "35.00"),
    ]
    assert (body["estimated_subtotal"], body["estimated_tax"], body["estimated_total"]) == (
        "45.00",
        "9.00",
        "54.00",
    )
    assert (body["adjustments"], body["unbilled_bytes"]) == ("0.00", 0)
    assert [
        (s["id"], s["bytes"], s["remaining_bytes"], s["total_bytes"], s["remaining_as_of"])
        for s in body["sub_accounts"]
    ] == [
        (sub_account.pk, 114 * GIB, None, None, None),
        (bf.pk, 0, 3 * GIB, 10 * GIB, "2026-11-20T10:00:00Z"),
    ]
    # November closes with no more usage: the invoice says what the estimate said.
    invoice, _ = invoice_issue(
        customer=october,
        period_start=nov,
        now=dt.datetime(2026, 12, 2, tzinfo=dt.UTC),
        send_email=False,
    )
    assert invoice.total == Decimal("54.00")


@pytest.mark.django_db
def test_current_usage_without_subscriptions_shows_unbilled_bytes(
    customer_api, customer, sub_account, monkeypatch
):
    add_usage(sub_account, dt.date(2026, 11, 1), 2, 1)
    monkeypatch.setattr(
        "django.utils.timezone.now", lambda: dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    )
    body = ok(customer_api.get("/api/v1/usage/current/"))
    assert body["subscriptions"] == []
    assert body["unbilled_bytes"] == 2 * GIB
    assert body["estimated_total"] == "0.00"
