"""Issue 17 item 6 through the API: `generate/` skips what has nothing billable and refuses a
month before the customer existed, the draft the reseller reads is the invoice finalizing
issues, lines carry ids, voiding notifies and the reissue shows `replaces`, the currency is
locked by invoices and only circulating currencies are accepted."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from accounts.api_keys import api_key_create
from accounts.models import Customer
from billing.invoicing.cycle import invoice_create_draft
from billing.invoicing.issuing import invoice_issue
from billing.invoicing.periods import period_last_closed
from billing.models import Invoice, InvoiceEmail, InvoiceLine, InvoiceSequence, Subscription
from tests import factories
from tests.api.conftest import key_client
from tests.api.schema_check import assert_matches_schema
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage

R = "/api/v1/reseller"


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


def _since(customer: Customer, day: dt.date) -> Customer:
    """Backdate `created_at` (set on insert): a customer of ours since `day`."""
    Customer.objects.filter(pk=customer.pk).update(
        created_at=dt.datetime.combine(day, dt.time(9), tzinfo=dt.UTC)
    )
    customer.refresh_from_db()
    return customer


@pytest.fixture
def month(reseller):
    """The month that closed last (generate/ bills ended months only)."""
    return period_last_closed(tz=reseller.tzinfo, now=timezone.now())


def _generate(api, body):
    return api.post(f"{R}/invoices/generate/", body, format="json")


# --- generate: nothing billable, before the customer --------------------------------------


@pytest.mark.django_db
def test_generate_for_a_customer_created_after_the_month_is_409_and_issues_nothing(
    reseller_api, customer, month, settings, tmp_path, django_capture_on_commit_callbacks
):
    """The issue's repro: `{"period": "2026-10", "customer": 8, "finalize": true}` for a
    customer created in December issued a numbered zero invoice and emailed it."""
    settings.MEDIA_ROOT = tmp_path
    before = month.previous()  # the customer was created this month: two months before it
    for period in (before.label, "1970-01"):
        with django_capture_on_commit_callbacks(execute=True):
            refused = _generate(
                reseller_api, {"period": period, "customer": customer.pk, "finalize": True}
            )
        body = error(refused, 409, "period_before_customer")
        assert f"{period} is before it" in body["message"]
    assert not Invoice.objects.exists() and not InvoiceSequence.objects.exists()
    assert mail.outbox == []


@pytest.mark.django_db
@pytest.mark.parametrize("finalize", [True, False])
def test_generate_for_a_customer_with_nothing_billable_answers_skipped(
    reseller_api, customer, month, finalize, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    _since(customer, month.start - dt.timedelta(days=40))
    with django_capture_on_commit_callbacks(execute=True):
        response = _generate(
            reseller_api, {"period": month.label, "customer": customer.pk, "finalize": finalize}
        )
    body = ok(response)
    assert (body["invoices"], body["failed"], body["voided"]) == ([], [], [])
    assert body["skipped"] == [
        {
            "customer": customer.pk,
            "code": "nothing_billable",
            "message": f"Customer {customer.pk} has no subscription, usage or adjustment in "
            f"{month.label}: no invoice.",
        }
    ]
    assert not Invoice.objects.exists() and not InvoiceSequence.objects.exists()
    assert mail.outbox == []


@pytest.mark.django_db
def test_finalizing_a_draft_with_nothing_billable_left_is_409(
    reseller_api, customer, month, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    _since(customer, month.start)
    subscription = SubscriptionFactory(
        customer=customer, plan=PlanFactory(reseller=customer.reseller)
    )
    draft, _ = invoice_create_draft(customer=customer, period_start=month.start, now=timezone.now())
    Subscription.objects.filter(pk=subscription.pk).update(starts_on=month.end)  # behind its back
    error(reseller_api.post(f"{R}/invoices/{draft.pk}/finalize/", {}), 409, "nothing_billable")
    assert Invoice.objects.get(pk=draft.pk).status == "draft"
    assert not InvoiceSequence.objects.exists()


# --- the draft read is the invoice issued ------------------------------------------------------


@pytest.fixture
def shop(reseller, customer, month, settings, tmp_path):
    """Plan A: 10.00 + 100 GB free + 2.50/GB; 10 GiB a day for 20 days of the month = 200 GiB
    = 260.00. Plan B: a flat 400.00 with traffic included."""
    settings.MEDIA_ROOT = tmp_path
    _since(customer, month.start - dt.timedelta(days=40))
    plan_a = PlanFactory(reseller=reseller, code="plan-a", name="Plan A")
    plan_b = PlanFactory(
        reseller=reseller,
        code="plan-b",
        name="Plan B",
        base_fee=Decimal("400"),
        tiers=[(None, Decimal("0"))],
    )
    subscription = SubscriptionFactory(customer=customer, plan=plan_a)
    add_usage(factories.SubAccountFactory(customer=customer), month.start, 20, 10)
    return subscription, plan_b


@pytest.mark.django_db
def test_a_draft_shows_the_new_plan_after_cancel_and_subscribe_like_preview_and_finalize(
    reseller_api, customer, month, shop, django_capture_on_commit_callbacks
):
    """The issue's repro: after voiding, cancelling the subscription and subscribing the
    customer to another plan, the draft still showed the old plan while the preview and the
    finalized invoice said 400.00."""
    subscription, plan_b = shop
    body = {"period": month.label, "customer": customer.pk}
    (first,) = ok(_generate(reseller_api, {**body, "finalize": True}))["invoices"]
    assert first["total"] == "260.00"
    with django_capture_on_commit_callbacks(execute=True):
        ok(reseller_api.post(f"{R}/invoices/{first['id']}/void/", {"reason": "wrong plan"}))
    (draft,) = ok(_generate(reseller_api, body))["invoices"]
    assert (draft["status"], draft["total"]) == ("draft", "260.00")

    cancel = {"ends_on": subscription.starts_on.isoformat()}
    ok(reseller_api.patch(f"{R}/subscriptions/{subscription.pk}/", cancel, format="json"))
    subscribe = {"customer": customer.pk, "plan": plan_b.pk, "starts_on": month.start.isoformat()}
    ok(reseller_api.post(f"{R}/subscriptions/", subscribe, format="json"), status=201)

    shown = ok(reseller_api.get(f"{R}/invoices/{draft['id']}/"))
    # (schema_check would match `preview/` to `invoices/{id}/`: checked by status only)
    preview = reseller_api.get(
        f"{R}/invoices/preview/", {"period": month.label, "customer": customer.pk}
    )
    assert preview.status_code == 200, preview.content
    preview = preview.json()
    assert (shown["total"], preview["total"]) == ("400.00", "400.00")  # the old code: 260.00
    assert (shown["stale"], shown["replaces"]) == (False, first["number"])
    assert [(ln["group"], ln["amount"]) for ln in shown["lines"]] == [
        (ln["group"], ln["amount"]) for ln in preview["lines"]
    ]
    assert {ln["group"] for ln in shown["lines"]} == {"Plan B - all upstreams"}
    issued = ok(reseller_api.post(f"{R}/invoices/{draft['id']}/finalize/", {"send_email": False}))
    assert (issued["total"], issued["replaces"]) == ("400.00", first["number"])
    assert issued["lines"] == shown["lines"]  # what was read is what was issued


@pytest.mark.django_db
def test_a_draft_left_behind_by_a_change_billing_does_not_see_reads_stale(
    reseller_api, customer, month, shop
):
    """A tax rate changed since the draft was rated (customer details are accounts', which
    do not re-rate drafts): the draft says `stale` until `generate/` refreshes it."""
    (draft,) = ok(_generate(reseller_api, {"period": month.label, "customer": customer.pk}))[
        "invoices"
    ]
    ok(reseller_api.patch(f"{R}/customers/{customer.pk}/", {"tax_rate": "20"}, format="json"))
    shown = ok(reseller_api.get(f"{R}/invoices/{draft['id']}/"))
    assert (shown["total"], shown["stale"]) == ("260.00", True)
    listed = ok(reseller_api.get(f"{R}/invoices/"))
    assert listed["results"][0]["stale"] is None  # not worked out for every draft of a list
    ok(_generate(reseller_api, {"period": month.label, "customer": customer.pk}))
    shown = ok(reseller_api.get(f"{R}/invoices/{draft['id']}/"))
    assert (shown["total"], shown["stale"]) == ("312.00", False)


# --- lines carry their id ------------------------------------------------------------------------


@pytest.mark.django_db
def test_invoice_lines_carry_their_ids_for_reseller_and_customer(
    reseller_api, customer, month, shop
):
    issued, _ = invoice_issue(
        customer=customer, period_start=month.start, now=timezone.now(), send_email=False
    )
    ids = list(
        InvoiceLine.objects.filter(invoice=issued).order_by("position").values_list("pk", flat=True)
    )
    assert len(ids) == 3
    customer_api = key_client(
        api_key_create(reseller=customer.reseller, customer=customer, name="c")[1]
    )
    for api, base in ((reseller_api, f"{R}/invoices/"), (customer_api, "/api/v1/invoices/")):
        detail = ok(api.get(f"{base}{issued.pk}/"))
        (listed,) = ok(api.get(base))["results"]
        assert [ln["id"] for ln in detail["lines"]] == ids
        assert [ln["id"] for ln in listed["lines"]] == ids
        assert detail["replaces"] is None


# --- void notice and replaces --------------------------------------------------------------------


@pytest.mark.django_db
def test_voiding_emails_the_customer_once_and_the_reissue_shows_replaces_to_the_customer(
    reseller_api, customer, month, shop, django_capture_on_commit_callbacks
):
    body = {"period": month.label, "customer": customer.pk, "finalize": True}
    with django_capture_on_commit_callbacks(execute=True):
        (first,) = ok(_generate(reseller_api, body))["invoices"]
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        voided = ok(reseller_api.post(f"{R}/invoices/{first['id']}/void/", {}))
    assert voided["status"] == "void"
    (notice,) = mail.outbox
    assert notice.to == [customer.email] and f"Invoice {first['number']}" in notice.subject
    assert "is void" in notice.subject and notice.attachments == []
    with django_capture_on_commit_callbacks(execute=True):
        (second,) = ok(_generate(reseller_api, body))["invoices"]
    assert second["replaces"] == first["number"] and second["number"] != first["number"]
    assert len(mail.outbox) == 2  # the notice once, then the new invoice
    customer_api = key_client(
        api_key_create(reseller=customer.reseller, customer=customer, name="c")[1]
    )
    mine = ok(customer_api.get(f"/api/v1/invoices/{second['id']}/"))
    assert mine["replaces"] == first["number"]
    assert InvoiceEmail.objects.filter(kind="void_notice").count() == 1


@pytest.mark.django_db
def test_voiding_with_send_email_false_sends_no_notice(
    reseller_api, customer, month, shop, django_capture_on_commit_callbacks
):
    issued, _ = invoice_issue(
        customer=customer, period_start=month.start, now=timezone.now(), send_email=False
    )
    with django_capture_on_commit_callbacks(execute=True):
        ok(reseller_api.post(f"{R}/invoices/{issued.pk}/void/", {"send_email": False}))
    assert mail.outbox == [] and not InvoiceEmail.objects.exists()


# --- currency ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_customer_with_a_finalized_invoice_keeps_its_currency(
    reseller_api, reseller, month, settings, tmp_path
):
    """The issue's repro: a customer with a finalized JPY invoice could be switched to USD.
    Usage with no subscription: the invoice shows it unbilled (JPY 0), but it exists."""
    settings.MEDIA_ROOT = tmp_path
    customer = _since(factories.CustomerFactory(reseller=reseller, currency="JPY"), month.start)
    add_usage(factories.SubAccountFactory(customer=customer), month.start, 3, 1)
    issued, _ = invoice_issue(
        customer=customer, period_start=month.start, now=timezone.now(), send_email=False
    )
    assert (issued.currency, issued.status, customer.subscriptions.exists()) == (
        "JPY",
        "finalized",
        False,
    )
    url = f"{R}/customers/{customer.pk}/"
    body = error(
        reseller_api.patch(url, {"currency": "USD"}, format="json"), 409, "customer_currency_locked"
    )
    assert body["message"].startswith("The customer has invoices in JPY")
    assert body["extra"]["fields"]["currency"] == [body["message"]]
    customer.refresh_from_db()
    assert customer.currency == "JPY"


@pytest.mark.django_db
@pytest.mark.parametrize("code", ["XAU", "XXX", "XTS", "XDR", "DEM", "BOV"])
def test_non_circulating_currencies_are_refused(reseller_api, reseller, customer, code):
    created = reseller_api.post(
        f"{R}/customers/",
        {"name": "Gold Ltd", "email": "gold@example.com", "currency": code},
        format="json",
    )
    assert created.status_code == 400, created.content
    assert "currency" in created.json()["extra"]["fields"]
    patched = reseller_api.patch(f"{R}/customers/{customer.pk}/", {"currency": code}, format="json")
    assert patched.status_code == 400 and "currency" in patched.json()["extra"]["fields"]
    plan = reseller_api.post(
        f"{R}/plans/",
        {
            "code": "gold",
            "name": "Gold",
            "currency": code,
            "base_fee": "1",
            "pricing_model": "graduated",
            "tiers": [{"up_to": None, "unit_price": "1"}],
        },
        format="json",
    )
    body = error(plan, 400, "invalid_plan")
    assert body["extra"]["fields"]["currency"] == [
        f"'{code}' is not an ISO 4217 currency code in circulation (e.g. USD)."
    ]
    assert Customer.objects.count() == 1 and customer.currency == "USD"


@pytest.mark.django_db
@pytest.mark.parametrize("code", ["USD", "EUR", "JPY", "KWD", "CHF", "XOF"])
def test_circulating_currencies_are_accepted(reseller_api, code):
    created = reseller_api.post(
        f"{R}/customers/",
        {"name": "Ltd", "email": "c@example.com", "currency": code},
        format="json",
    )
    assert ok(created, status=201)["currency"] == code
