"""`POST reseller/invoices/generate/`, `GET reseller/invoices/preview/` and
`GET reseller/customers/{id}/usage/current/`: what `generate_invoices` did from a shell."""

from __future__ import annotations

import pytest
from django.utils import timezone

from billing.invoicing.periods import period_containing, period_last_closed
from billing.models import Invoice
from tests import factories
from tests.api.conftest import key_client
from tests.billing.factories import PlanFactory, add_usage, customers_using
from webhooks.models import WebhookEvent

R = "/api/v1/reseller"


@pytest.fixture
def shop(db, settings, tmp_path, reseller):
    """Two customers on 10.00 + 100 GB free + 2.50/GB using 10 GiB a day for 20 days of the
    last closed month: 200 GiB = 10.00 + 100 x 2.50 = 260.00 each (no tax)."""
    settings.MEDIA_ROOT = tmp_path
    month = period_last_closed(tz=reseller.tzinfo, now=timezone.now())
    plan = PlanFactory(reseller=reseller)
    return month, customers_using(
        reseller, plan, count=2, start=month.start, days=20, gib_per_day=10
    )


def _label(period) -> str:
    return period.start.strftime("%Y-%m")


def _generate(api, body):
    return api.post(f"{R}/invoices/generate/", body, format="json")


def test_generate_for_a_customer_drafts_then_finalizes_and_answers_the_invoice(reseller_api, shop):
    month, (first, _) = shop
    response = _generate(reseller_api, {"period": _label(month), "customer": first.pk})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["queued"] is False and body["finalize"] is False and body["failed"] == []
    (invoice,) = body["invoices"]
    assert invoice["customer"] == first.pk and invoice["status"] == "draft"
    assert invoice["total"] == "260.00" and invoice["number"] is None
    assert Invoice.objects.count() == 1  # only the named customer

    again = _generate(
        reseller_api, {"period": _label(month), "customer": first.pk, "finalize": True}
    )
    assert again.status_code == 200, again.content
    (issued,) = again.json()["invoices"]
    assert issued["id"] == invoice["id"] and issued["status"] == "finalized"
    assert issued["number"] and issued["total"] == "260.00"
    # repeating bills nothing twice: the same issued invoice comes back
    third = _generate(
        reseller_api, {"period": _label(month), "customer": first.pk, "finalize": True}
    )
    assert [i["id"] for i in third.json()["invoices"]] == [invoice["id"]]
    assert Invoice.objects.filter(customer=first).count() == 1


def test_generate_for_the_whole_reseller_is_queued_with_202(reseller_api, shop, reseller):
    month, customers = shop
    response = _generate(reseller_api, {"period": _label(month), "finalize": True})
    assert response.status_code == 202, response.content
    assert response.json() == {
        "period": _label(month),
        "finalize": True,
        "queued": True,
        "invoices": [],
        "voided": [],
        "failed": [],
        "skipped": [],
    }
    # tasks run in-process in tests: both customers are billed once
    invoices = Invoice.objects.filter(reseller=reseller, period_start=month.start)
    assert sorted(invoices.values_list("customer_id", flat=True)) == sorted(c.pk for c in customers)
    assert set(invoices.values_list("status", flat=True)) == {"finalized"}
    assert not WebhookEvent.objects.exists()  # no endpoint: no event


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "period"),
        ({"period": "2026-13"}, "period"),
        ({"period": "2026-10", "finalize": "maybe"}, "finalize"),
        ({"period": "2026-10", "bogus": 1}, "bogus"),
    ],
)
def test_generate_bad_input_is_400_naming_the_field(reseller_api, shop, body, field):
    response = _generate(reseller_api, body)
    assert response.status_code == 400, response.content
    assert field in response.json()["extra"]["fields"]
    assert not Invoice.objects.exists()


def test_generate_open_month_is_409_and_foreign_customer_404(reseller_api, shop, reseller):
    month, (first, _) = shop
    open_month = period_containing(tz=reseller.tzinfo, now=timezone.now())
    for body in (
        {"period": _label(open_month)},
        {"period": _label(open_month), "customer": first.pk},
    ):
        response = _generate(reseller_api, body)
        assert response.status_code == 409, response.content
        assert response.json()["code"] == "period_not_ended"
    stranger = factories.CustomerFactory()
    for customer_id in (stranger.pk, 999999):
        response = _generate(reseller_api, {"period": _label(month), "customer": customer_id})
        assert response.status_code == 404, response.content
    assert not Invoice.objects.exists()


def test_preview_computes_lines_and_totals_without_writing(reseller_api, shop, reseller):
    month, (first, _) = shop
    response = reseller_api.get(
        f"{R}/invoices/preview/", {"period": _label(month), "customer": first.pk}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["customer"] == first.pk and body["period_start"] == str(month.start)
    assert (body["subtotal"], body["tax"], body["total"]) == ("260.00", "0.00", "260.00")
    amounts = sorted(line["amount"] for line in body["lines"])
    assert "10.00" in amounts and "250.00" in amounts
    assert not Invoice.objects.exists()
    # the open month previews too (no usage in it here: the base fee)
    open_month = period_containing(tz=reseller.tzinfo, now=timezone.now())
    current = reseller_api.get(
        f"{R}/invoices/preview/", {"period": _label(open_month), "customer": first.pk}
    )
    assert current.status_code == 200 and current.json()["total"] == "10.00"


def test_preview_errors(reseller_api, shop, reseller):
    month, (first, _) = shop
    url = f"{R}/invoices/preview/"
    assert reseller_api.get(url, {"period": _label(month)}).status_code == 400
    bad = reseller_api.get(url, {"period": "2026-13", "customer": first.pk})
    assert bad.status_code == 400 and "period" in bad.json()["extra"]["fields"]
    unknown = reseller_api.get(url, {"period": _label(month), "customer": first.pk, "x": 1})
    assert unknown.status_code == 400 and "x" in unknown.json()["extra"]["fields"]
    stranger = factories.CustomerFactory()
    assert (
        reseller_api.get(url, {"period": _label(month), "customer": stranger.pk}).status_code == 404
    )
    future = period_containing(tz=reseller.tzinfo, now=timezone.now()).next()
    response = reseller_api.get(url, {"period": _label(future), "customer": first.pk})
    assert response.status_code == 409 and response.json()["code"] == "period_not_started"


def test_customer_usage_current_in_reseller_scope_equals_the_customer_view(
    reseller_api, shop, reseller
):
    _, (first, _) = shop
    open_month = period_containing(tz=reseller.tzinfo, now=timezone.now())
    add_usage(first.sub_accounts.first(), open_month.start, 1, 3)
    from accounts.api_keys import api_key_create

    customer_api = key_client(api_key_create(reseller=reseller, customer=first, name="c")[1])
    theirs = customer_api.get("/api/v1/usage/current/")
    ours = reseller_api.get(f"{R}/customers/{first.pk}/usage/current/")
    assert ours.status_code == 200 and theirs.status_code == 200, ours.content
    mine, yours = ours.json(), theirs.json()
    assert mine.pop("as_of") and yours.pop("as_of")  # each answer's own instant
    assert mine == yours
    assert ours.json() != {} and "10.00" in ours.content.decode()
    stranger = factories.CustomerFactory()
    assert reseller_api.get(f"{R}/customers/{stranger.pk}/usage/current/").status_code == 404
    assert reseller_api.get(f"{R}/customers/999999/usage/current/").status_code == 404
