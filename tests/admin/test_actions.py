"""One-click actions: each calls its service, reports what it did, and refuses clearly."""

import datetime as dt

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.api_keys import api_key_authenticate
from accounts.models import ApiKey, Customer
from billing.invoicing.periods import period_last_closed
from billing.invoicing.voiding import invoice_void
from billing.models import Invoice, InvoiceEmail
from tests import factories
from usage.models import SyncRun, UpstreamSubAccount
from usage.simulator import SimulatorConfig, start_simulator

CREDS = {"api_id": "demo-api-id", "api_token": "demo-api-token"}


def _post(client, model, obj, name, data=None):
    url = reverse(f"admin:{model}_action", args=[obj.pk, name])
    return client.post(url, data or {}, follow=True)


def _messages(response):
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


@pytest.fixture
def staff(client, alpha):
    client.force_login(alpha.staff)
    return alpha


def test_finalize_a_draft_then_download_its_pdf(client, staff):
    draft = staff.invoices["delta"]

    response = _post(client, "billing_invoice", draft, "finalize")

    invoice = Invoice.objects.get(pk=draft.pk)
    assert invoice.status == "finalized"
    assert _messages(response) == [
        (
            "success",
            f"Finalized as {invoice.number}: total ${invoice.total:.2f}, "
            f"due {invoice.due_on:%Y-%m-%d}; the email is queued.",
        )
    ]
    assert invoice.events.last().actor == staff.staff.username
    pdf = client.post(reverse("admin:billing_invoice_action", args=[draft.pk, "download_pdf"]))
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf["Content-Disposition"] == f'attachment; filename="{invoice.number}.pdf"'
    assert pdf.content[:5] == b"%PDF-"


@pytest.mark.parametrize(
    ("key", "name", "refusal"),
    [
        ("delta", "mark_paid", "cannot become paid"),
        ("delta", "void", "cannot become void"),
        ("delta", "resend_email", "A draft cannot be emailed."),
        ("delta", "download_pdf", "Drafts are previewed, not stored as PDF."),
        ("acme", "finalize", "is finalized, not a draft"),
        ("acme", "refresh_draft", "is finalized, not a draft"),
        ("beta", "void", "is paid; it cannot become void"),
    ],
)
@pytest.mark.slow
def test_a_state_that_does_not_allow_the_action_is_refused(client, staff, key, name, refusal):
    invoice = staff.invoices[key]
    before = Invoice.objects.get(pk=invoice.pk).status

    response = _post(client, "billing_invoice", invoice, name)

    [(level, text)] = _messages(response)
    assert level == "error"
    assert text.startswith("Refused: ") and refusal in text
    assert Invoice.objects.get(pk=invoice.pk).status == before


def test_finalizing_a_void_invoice_is_refused(client, staff):
    acme = invoice_void(invoice=staff.invoices["acme"], now=timezone.now(), actor="t")

    response = _post(client, "billing_invoice", acme, "finalize")

    assert _messages(response) == [
        ("error", f"Refused: Invoice {acme.number} is void, not a draft.")
    ]


def test_void_mark_paid_and_resend(client, staff, django_capture_on_commit_callbacks):
    acme = staff.invoices["acme"]
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, "billing_invoice", acme, "resend_email")
    assert _messages(response) == [
        ("success", f"Email #2 of {acme.number} queued to {staff.customers['acme'].email}.")
    ]
    assert InvoiceEmail.objects.get(invoice=acme, sequence=2).status == "sent"  # eager task
    assert [m.to for m in mail.outbox] == [[staff.customers["acme"].email]]

    response = _post(client, "billing_invoice", acme, "void", {"reason": "duplicate"})
    assert _messages(response) == [("success", f"{acme.number} voided; its number stays taken.")]
    voided = Invoice.objects.get(pk=acme.pk)
    assert (voided.status, voided.events.last().note) == ("void", "duplicate")


def test_buttons_follow_the_invoice_status(client, staff):
    html = client.get(reverse("admin:billing_invoice_change", args=[staff.invoices["delta"].pk]))
    buttons = [a.action.name for a in html.context["flowbill_actions"]]
    assert buttons == ["finalize", "refresh_draft", "discard_draft"]
    html = client.get(reverse("admin:billing_invoice_change", args=[staff.invoices["acme"].pk]))
    assert [a.action.name for a in html.context["flowbill_actions"]] == [
        "download_pdf",
        "record_payment",
        "mark_paid",
        "resend_email",
        "void",
    ]
    assert 'name="csrfmiddlewaretoken"' in html.content.decode()


def test_refresh_a_draft(client, staff):
    response = _post(client, "billing_invoice", staff.invoices["delta"], "refresh_draft")
    assert _messages(response) == [("success", "Draft refreshed from current usage: total $22.00.")]


def test_create_or_refresh_a_draft_from_the_customer_page(client, staff):
    acme = staff.customers["acme"]
    page = client.get(reverse("admin:accounts_customer_change", args=[acme.pk])).content.decode()
    last = period_last_closed(tz=staff.reseller.tzinfo, now=timezone.now())
    assert f'type="month" name="period" value="{last.label}"' in page

    created = _post(client, "accounts_customer", acme, "create_draft", {"period": "2026-09"})
    draft = Invoice.objects.get(customer=acme, period_start=dt.date(2026, 9, 1))
    assert created.redirect_chain[-1][0] == reverse("admin:billing_invoice_change", args=[draft.pk])
    assert _messages(created) == [
        ("success", f"Draft for 2026-09 created: total ${draft.total:,.2f}.")
    ]
    again = _post(client, "accounts_customer", acme, "create_draft", {"period": "2026-09"})
    assert _messages(again)[0][1].startswith("Draft for 2026-09 refreshed")
    issued = _post(client, "accounts_customer", acme, "create_draft", {"period": "2026-10"})
    assert _messages(issued) == [
        (
            "warning",
            f"{staff.invoices['acme'].number} for 2026-10 is already finalized; nothing "
            f"changed: total ${staff.invoices['acme'].total:,.2f}.",
        )
    ]
    running = timezone.now().astimezone(staff.reseller.tzinfo).strftime("%Y-%m")
    refused = _post(client, "accounts_customer", acme, "create_draft", {"period": running})
    [(level, text)] = _messages(refused)
    assert level == "error" and "has not ended yet" in text
    bad = _post(client, "accounts_customer", acme, "create_draft", {"period": "2026-13"})
    assert _messages(bad)[0][0] == "error"


def test_api_key_is_shown_once(client, staff):
    acme = staff.customers["acme"]
    url = reverse("admin:accounts_customer_action", args=[acme.pk, "create_api_key"])

    response = client.post(url, {"name": "dashboard"})

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    raw = response.context["raw_key"]
    assert raw in response.content.decode()
    key = api_key_authenticate(raw_key=raw, now=timezone.now())
    assert (key.customer, key.name, key.scope) == (acme, "dashboard", ApiKey.Scope.CUSTOMER)
    assert raw not in str(response.cookies)
    page = client.get(reverse("admin:accounts_customer_change", args=[acme.pk])).content.decode()
    assert key.prefix in page and raw not in page


@pytest.fixture
def sim():
    with start_simulator(port=0, config=SimulatorConfig(seed=3, rate_limit_enabled=False)) as run:
        yield run


def test_sync_now_for_a_sub_account_reports_success_and_failure(
    transactional_db, client, staff, sim
):
    """Through `usage_sync_request` (the API's path); without a broker the task runs when the
    request commits, so the message says how it ended."""
    upstream = staff.upstreams["ipfoxy"]
    upstream.base_url, upstream.credentials = sim.url, CREDS
    upstream.save()
    sub = staff.subs["acme-1"]
    sub.upstream_id = "SIM00001"
    sub.save()

    response = _post(client, "accounts_subaccount", sub, "sync_now")

    run = SyncRun.objects.filter(sub_account=sub).latest("started_at")
    assert run.status == "succeeded" and run.requests == 1
    assert _messages(response) == [
        ("success", f"Synced {sub}: {run.rows_written} rows changed, 1 upstream requests.")
    ]
    upstream.credentials = {"api_id": "demo-api-id", "api_token": "wrong"}
    upstream.save()
    failed = _post(client, "accounts_subaccount", sub, "sync_now")
    [(level, text)] = _messages(failed)
    assert level == "error" and "(upstream_auth_failed)" in text and "wrong" not in text


def test_sync_now_for_an_upstream_account_syncs_its_sub_accounts(
    client, staff, sim, django_capture_on_commit_callbacks
):
    upstream = staff.upstreams["ipfoxy"]
    upstream.base_url, upstream.credentials = sim.url, CREDS
    upstream.save()
    before = SyncRun.objects.filter(upstream_account=upstream).count()

    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, "accounts_upstreamaccount", upstream, "sync_now")

    assert _messages(response) == [
        (
            "success",
            f"Sync of {upstream.name} queued: 3 sub-accounts and the sub-account list. "
            "Results appear under Sync runs and on the dashboard.",
        )
    ]
    runs = SyncRun.objects.filter(upstream_account=upstream).order_by("pk")[before:]
    assert sorted(r.kind for r in runs) == ["discovery", "usage", "usage", "usage"]
    assert UpstreamSubAccount.objects.filter(upstream_account=upstream).count() > 4


def test_sync_now_of_an_inactive_upstream_account_is_refused_by_the_service(client, staff):
    upstream = staff.upstreams["ipfoxy"]
    upstream.is_active = False
    upstream.save(update_fields=["is_active"])
    before = SyncRun.objects.count()

    for model, obj in (
        ("accounts_upstreamaccount", upstream),
        ("accounts_subaccount", staff.subs["acme-1"]),
    ):
        response = _post(client, model, obj, "sync_now")
        assert _messages(response) == [
            ("error", "Refused: This upstream account is inactive; activate it before syncing.")
        ]
    assert SyncRun.objects.count() == before


def test_sync_now_with_the_broker_down_is_an_error_message_not_a_500(
    transactional_db, client, staff, monkeypatch
):
    """The same detection as the API's 503: the runs without a message are deleted and staff
    are told to try again."""
    from celery.app.task import Task
    from kombu.exceptions import OperationalError as BrokerError

    def down(self, *args, **kwargs):
        raise BrokerError("Connection refused.")

    monkeypatch.setattr(Task, "apply_async", down)
    before = SyncRun.objects.count()

    for model, obj in (
        ("accounts_upstreamaccount", staff.upstreams["ipfoxy"]),
        ("accounts_subaccount", staff.subs["acme-1"]),
    ):
        response = _post(client, model, obj, "sync_now")
        assert response.status_code == 200
        [(level, text)] = _messages(response)
        assert level == "error" and "task broker unreachable" in text, text
        assert "Connection refused" not in text
    assert SyncRun.objects.count() == before


def test_charts_on_customer_and_sub_account_pages(client, staff):
    acme = staff.customers["acme"]
    html = client.get(reverse("admin:accounts_customer_change", args=[acme.pk])).content.decode()
    assert html.count('class="flowbill-chart flowbill-daily-chart"') == 1
    assert "Daily usage, last 90 days" in html
    sub = staff.subs["acme-1"]
    page = client.get(reverse("admin:accounts_subaccount_change", args=[sub.pk]))
    html = page.content.decode()
    assert 'class="flowbill-chart flowbill-daily-chart"' in html
    assert "upstream_auth_failed" not in html  # Acme's syncs succeeded
    actions = [a.action.name for a in page.context["flowbill_actions"]]
    assert actions == ["move", "close", "delete", "allocate", "sync_now"]  # an IPFoxy one


def test_add_customer_still_works_without_alert_rules(client, staff):
    response = client.post(
        reverse("admin:accounts_customer_add"),
        {"name": "New", "email": "new@example.com", "tax_rate": "0", "status": "active"},
    )
    assert response.status_code == 302


def test_admin_adds_a_customer_without_a_currency_in_the_resellers(client, staff):
    staff.reseller.currency = "EUR"
    staff.reseller.save(update_fields=["currency"])
    response = client.post(
        reverse("admin:accounts_customer_add"),
        {"name": "New", "email": "new@example.com", "tax_rate": "0", "status": "active"},
    )
    assert response.status_code == 302
    # Saved through customer_create, which applies the default (the form's validation
    # leaves the empty currency alone).
    assert Customer.objects.get(reseller=staff.reseller, name="New").currency == "EUR"


def test_staff_without_a_reseller_cannot_act(client, db, media):
    stray = factories.StaffUserFactory(reseller=None, username="stray")
    invoice_owner = factories.CustomerFactory()
    client.force_login(stray)
    url = reverse("admin:accounts_customer_action", args=[invoice_owner.pk, "create_api_key"])
    assert client.post(url).status_code == 404
