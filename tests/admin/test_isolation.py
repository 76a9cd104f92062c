"""Staff of one reseller never see another reseller's figures, nor act on its objects."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import ApiKey
from billing.models import Invoice, InvoiceEmail
from tests import factories
from usage.models import SyncRun

pytestmark = pytest.mark.slow  # every test here is over 2 s or shares one that is


def _action(model, obj, name):
    return reverse(f"admin:{model}_action", args=[obj.pk, name])


def test_dashboard_shows_only_own_figures(client, alpha, bravo, pinned_now):
    client.force_login(alpha.staff)

    for url in ("/admin/", f"/admin/?reseller={bravo.reseller.pk}"):  # the parameter is ignored
        response = client.get(url)
        assert response.status_code == 200
        dashboard = response.context["dashboard"]
        assert dashboard.reseller == alpha.reseller
        assert {c.customer_id for c in dashboard.figures.customers} == {
            c.pk for c in alpha.customers.values()
        }
        html = response.content.decode()
        assert "Alpha Acme" in html
        assert "Bravo" not in html and "BRAVO" not in html


def test_superuser_picks_a_reseller(admin_client, alpha, bravo, pinned_now):
    index = admin_client.get("/admin/")
    assert "dashboard" not in index.context
    assert f"?reseller={bravo.reseller.pk}" in index.content.decode()

    response = admin_client.get(f"/admin/?reseller={bravo.reseller.pk}")
    assert response.context["dashboard"].reseller == bravo.reseller
    assert "Alpha Acme" not in response.content.decode()
    assert admin_client.get("/admin/?reseller=999999").status_code == 404
    assert admin_client.get("/admin/?reseller=abc").status_code == 404


def test_staff_without_reseller_get_the_plain_index(client, alpha):
    client.force_login(factories.StaffUserFactory(reseller=None, username="stray"))
    response = client.get("/admin/")
    assert response.status_code == 200
    assert "dashboard" not in response.context
    assert "Alpha" not in response.content.decode()


@pytest.mark.parametrize(
    ("model", "key", "name"),
    [
        ("billing_invoice", "delta", "finalize"),
        ("billing_invoice", "delta", "refresh_draft"),
        ("billing_invoice", "acme", "void"),
        ("billing_invoice", "acme", "mark_paid"),
        ("billing_invoice", "acme", "resend_email"),
        ("billing_invoice", "acme", "download_pdf"),
        ("accounts_customer", "acme", "create_api_key"),
        ("accounts_customer", "gamma", "create_draft"),
        ("accounts_subaccount", "acme-1", "sync_now"),
        ("accounts_upstreamaccount", "ipfoxy", "sync_now"),
    ],
)
def test_actions_on_another_resellers_objects_are_404(client, alpha, bravo, model, key, name):
    target = {
        "billing_invoice": bravo.invoices,
        "accounts_customer": bravo.customers,
        "accounts_subaccount": bravo.subs,
        "accounts_upstreamaccount": bravo.upstreams,
    }[model][key]
    before = (
        list(Invoice.objects.order_by("pk").values_list("status", "number")),
        ApiKey.objects.count(),
        SyncRun.objects.count(),
        InvoiceEmail.objects.count(),
    )
    client.force_login(alpha.staff)

    response = client.post(_action(model, target, name), {"reason": "x", "name": "k"})

    assert response.status_code == 404
    assert b"Bravo" not in response.content
    after = (
        list(Invoice.objects.order_by("pk").values_list("status", "number")),
        ApiKey.objects.count(),
        SyncRun.objects.count(),
        InvoiceEmail.objects.count(),
    )
    assert after == before


def test_guessed_ids_and_actions_are_404_and_only_post_is_accepted(client, alpha, bravo):
    client.force_login(alpha.staff)
    own = alpha.invoices["delta"]

    assert client.post(_action("billing_invoice", own, "no_such_action")).status_code == 404
    assert (
        client.post(reverse("admin:billing_invoice_action", args=[999999, "finalize"])).status_code
        == 404
    )
    assert client.get(_action("billing_invoice", own, "finalize")).status_code == 405
    assert Invoice.objects.get(pk=own.pk).status == "draft"


def test_actions_need_the_csrf_token(alpha):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alpha.staff)
    own = alpha.invoices["delta"]

    assert client.post(_action("billing_invoice", own, "finalize")).status_code == 403
    assert Invoice.objects.get(pk=own.pk).status == "draft"


def test_bulk_actions_ignore_another_resellers_ids(client, alpha, bravo):
    client.force_login(alpha.staff)
    theirs = bravo.invoices["acme"]

    client.post(
        reverse("admin:billing_invoice_changelist"),
        {"action": "mark_paid", "_selected_action": [theirs.pk]},
    )

    assert Invoice.objects.get(pk=theirs.pk).status == "finalized"


def test_alert_rules_cannot_point_at_another_resellers_customer(client, alpha, bravo):
    client.force_login(alpha.staff)
    url = reverse("admin:usage_usagealertrule_add")
    data = {
        "kind": "quota_share",
        "quota_gb": "100",
        "percent": "80",
        "unit_bytes": "1073741824",
        "notify_customer": "on",
        "is_active": "on",
    }

    foreign = client.post(url, {**data, "customer": bravo.customers["acme"].pk})
    assert foreign.status_code == 200
    assert "Select a valid choice" in foreign.content.decode()

    own = client.post(url, {**data, "customer": alpha.customers["acme"].pk})
    assert own.status_code == 302
    assert alpha.customers["acme"].usage_alert_rules.count() == 1
