"""Secrets never leak: upstream credentials, BytesFlows tokens, API keys and the SMTP
password stay out of logs (captured at DEBUG), error messages, SyncRun and delivery rows,
API responses, admin pages, the invoice PDF and the email.

One scenario drives every surface: credentials are stored through the API, syncs run
against the simulator with faults, a wrong token and an expired one, an invoice is
finalized, rendered and mailed through SMTP with a password; then everything that was
logged, answered, stored or rendered is scanned for each secret.
"""

from __future__ import annotations

import datetime as dt
import io
import logging

import pytest
from django.core.cache import cache
from pypdf import PdfReader
from rest_framework.test import APIClient

from accounts.api_keys import api_key_create
from billing.invoicing.cycle import invoices_generate_for_period
from billing.invoicing.delivery import invoice_email_send
from billing.invoicing.finalizing import invoice_finalize
from billing.models import Invoice, InvoiceEmail
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory
from tests.reliability import tally
from tests.reliability.conftest import start_sim
from tests.reliability.smtp_stub import SmtpStub
from usage.models import SyncRun, UsageAnomaly
from usage.services import usage_snapshot_bytesflows, usage_sync_sub_account

NOW = dt.datetime(2026, 4, 2, 10, 30, tzinfo=dt.UTC)
API_ID = "ipfoxy-id-SECRET-51c2"
API_TOKEN = "ipfoxy-token-SECRET-9d7e0b"
WRONG_TOKEN = "ipfoxy-token-SECRET-wrong-44aa"
BF_TOKEN = "bf-token-SECRET-77f1c3"
SMTP_PASSWORD = "smtp-password-SECRET-e1f0"


@pytest.mark.django_db
@pytest.mark.slow
def test_no_secret_in_logs_errors_rows_responses_admin_pdf_or_email(
    caplog, settings, tmp_path, client
):
    caplog.set_level(logging.DEBUG)
    cache.clear()
    settings.MEDIA_ROOT = tmp_path
    smtp = SmtpStub().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = smtp.host, smtp.port
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "mailer", SMTP_PASSWORD
    settings.EMAIL_USE_TLS = False

    reseller = factories.ResellerFactory(invoice_prefix="SEC")
    reseller_key = api_key_create(reseller=reseller, name="ops")[1]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {reseller_key}")
    texts: list[tuple[str, str]] = []  # (where, text) to scan

    def keep(where, response):
        texts.append((where, response.content.decode(errors="replace")))
        return response

    try:
        with start_sim(NOW, ipfoxy_keys={API_ID: API_TOKEN}) as sim:
            sim.add_token(token=BF_TOKEN, account="alice")
            # Credentials go in through the API and never come back out.
            ipfoxy = keep("create upstream", api.post("/api/v1/reseller/upstream-accounts/", {
                "name": "IPFoxy", "provider": "ipfoxy", "base_url": sim.url,
                "credentials": {"api_id": API_ID, "api_token": API_TOKEN},
            }, format="json")).json()  # fmt: skip
            bytesflows = keep("create upstream", api.post("/api/v1/reseller/upstream-accounts/", {
                "name": "BytesFlows", "provider": "bytesflows", "base_url": sim.url,
            }, format="json")).json()  # fmt: skip
            customer = keep("create customer", api.post("/api/v1/reseller/customers/", {
                "name": "Leak Test Co", "email": "payer@example.com",
            }, format="json")).json()  # fmt: skip
            keep("refused credentials", api.post("/api/v1/reseller/upstream-accounts/", {
                "name": "Bad", "provider": "ipfoxy",
                "credentials": {"api_id": API_ID, "api_token": API_TOKEN, "x": BF_TOKEN},
            }, format="json"))  # fmt: skip
            subs = []
            for upstream, upstream_id, credentials in (
                (ipfoxy, "SIM00001", {}),
                (bytesflows, "alice", {"token": BF_TOKEN}),
            ):
                subs.append(keep("create sub-account", api.post(
                    "/api/v1/reseller/sub-accounts/",
                    {"customer": customer["id"], "upstream_account": upstream["id"],
                     "upstream_id": upstream_id, "label": upstream_id,
                     "credentials": credentials},
                    format="json",
                )).json())  # fmt: skip
            created = api.post(
                f"/api/v1/reseller/customers/{customer['id']}/api-keys/", {"name": "c"}
            )
            customer_key = created.json()["key"]  # shown once here, and only here

            from accounts.models import SubAccount

            ipfoxy_sub, bf_sub = (SubAccount.objects.get(pk=s["id"]) for s in subs)

            def sync():
                return usage_sync_sub_account(
                    sub_account=SubAccount.objects.get(pk=ipfoxy_sub.pk),
                    start=sim.now() - dt.timedelta(hours=48), end=sim.now(), now=sim.now(),
                )  # fmt: skip

            sim.set_faults(http_5xx=1, html=1, http_429=1, retry_after=0)
            assert sync().status == "succeeded"
            keep("wrong token", api.patch(
                f"/api/v1/reseller/upstream-accounts/{ipfoxy['id']}/",
                {"credentials": {"api_id": API_ID, "api_token": WRONG_TOKEN}}, format="json",
            ))  # fmt: skip
            assert sync().error_code == "upstream_auth_failed"
            api.patch(
                f"/api/v1/reseller/upstream-accounts/{ipfoxy['id']}/",
                {"credentials": {"api_id": API_ID, "api_token": API_TOKEN}}, format="json",
            )  # fmt: skip
            for _ in range(2):
                assert usage_snapshot_bytesflows(sub_account=bf_sub, now=sim.now()).status == (
                    "succeeded"
                )
                sim.advance(3600)
            sim.set_faults(counter_backwards=1)
            usage_snapshot_bytesflows(sub_account=bf_sub, now=sim.now())
            sim.expire_token(BF_TOKEN)
            sim.advance(3600)
            assert usage_snapshot_bytesflows(sub_account=bf_sub, now=sim.now()).error_code == (
                "upstream_auth_failed"
            )
            keep("sync on request", api.post("/api/v1/reseller/sync/", {}, format="json"))

        # An invoice, its PDF and its email through SMTP with a password.
        from accounts.models import Customer

        owner = Customer.objects.get(pk=customer["id"])
        SubscriptionFactory(customer=owner, plan=PlanFactory(reseller=reseller))
        invoices_generate_for_period(reseller=reseller, period_start=dt.date(2026, 3, 1), now=NOW)
        invoice = invoice_finalize(invoice=Invoice.objects.get(customer=owner), now=NOW)
        delivery = InvoiceEmail.objects.get(invoice=invoice)
        assert invoice_email_send(delivery=delivery, now=NOW).status == "sent"
        assert smtp.auth_seen and SMTP_PASSWORD in smtp.auth_seen[0]  # it did log in
        with Invoice.objects.get(pk=invoice.pk).pdf.open("rb") as fh:
            pdf = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(fh.read())).pages)
        texts.append(("invoice PDF", pdf))
        texts.extend(("email", m.raw.decode(errors="replace")) for m in smtp.accepted)
    finally:
        smtp.stop()

    # Every API page a reseller and a customer can read.
    for path in (
        "/api/v1/reseller/upstream-accounts/",
        f"/api/v1/reseller/upstream-accounts/{ipfoxy['id']}/",
        "/api/v1/reseller/sub-accounts/",
        f"/api/v1/reseller/sub-accounts/{bf_sub.pk}/",
        "/api/v1/reseller/customers/",
        f"/api/v1/reseller/customers/{customer['id']}/api-keys/",
        "/api/v1/reseller/invoices/",
        f"/api/v1/reseller/invoices/{invoice.pk}/",
        "/api/v1/reseller/usage/",
    ):
        keep(path, api.get(path))
    customer_api = APIClient()
    customer_api.credentials(HTTP_AUTHORIZATION=f"Api-Key {customer_key}")
    for path in ("/api/v1/me/", "/api/v1/sub-accounts/", "/api/v1/invoices/"):
        keep(path, customer_api.get(path))

    # Every admin page of these objects, for reseller staff.
    client.force_login(factories.StaffUserFactory(reseller=reseller))
    run = SyncRun.objects.filter(error_code="upstream_auth_failed").first()
    for path in (
        "/admin/",
        "/admin/accounts/upstreamaccount/",
        f"/admin/accounts/upstreamaccount/{ipfoxy['id']}/change/",
        "/admin/accounts/subaccount/",
        f"/admin/accounts/subaccount/{bf_sub.pk}/change/",
        f"/admin/accounts/subaccount/{ipfoxy_sub.pk}/change/",
        f"/admin/accounts/customer/{customer['id']}/change/",
        "/admin/accounts/apikey/",
        "/admin/usage/syncrun/",
        f"/admin/usage/syncrun/{run.pk}/change/",
        "/admin/usage/usageanomaly/",
        f"/admin/billing/invoice/{invoice.pk}/change/",
    ):
        response = keep(path, client.get(path))
        assert response.status_code in (200, 404), path  # 404: not registered for staff

    rows = [
        *SyncRun.objects.values_list("error", flat=True),
        *UsageAnomaly.objects.values_list("note", flat=True),
        *InvoiceEmail.objects.values_list("last_error", flat=True),
    ]
    texts.append(("stored error and note fields", "\n".join(rows)))
    texts.append(("logs at DEBUG", caplog.text))
    assert "upstream retry" in caplog.text and "authentication failed" in "\n".join(rows)

    secrets = {
        "IPFoxy api id": API_ID,
        "IPFoxy api token": API_TOKEN,
        "wrong IPFoxy token": WRONG_TOKEN,
        "BytesFlows token": BF_TOKEN,
        "SMTP password": SMTP_PASSWORD,
        "reseller API key": reseller_key,
        "customer API key": customer_key,
        # `fb_<prefix>_<secret>`; the secret is urlsafe base64 and may itself hold "_".
        "API key secret part": customer_key.split("_", 2)[2],
    }
    leaks = [
        f"{name} in {where}"
        for where, text in texts
        for name, secret in secrets.items()
        if secret in text
    ]
    assert leaks == []
    assert len(texts) > 30
    tally.add("secret_scans", len(texts))
