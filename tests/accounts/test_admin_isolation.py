"""Staff of one reseller see and change only that reseller's rows in the admin."""

import pytest
from django.urls import reverse

from accounts.models import Customer, SubAccount, UpstreamAccount
from tests.factories import (
    CustomerFactory,
    ResellerFactory,
    StaffUserFactory,
    SubAccountFactory,
    UpstreamAccountFactory,
)


@pytest.fixture
def two_resellers(db):
    """Reseller A and B, each with a staff login, a customer, an upstream and a sub-account."""
    data = {}
    for key, name in (("a", "Alpha"), ("b", "Bravo")):
        reseller = ResellerFactory(name=f"{name} Proxies")
        customer = CustomerFactory(reseller=reseller, name=f"{name} Customer")
        upstream = UpstreamAccountFactory(reseller=reseller, name=f"{name} IPFoxy")
        sub = SubAccountFactory(
            customer=customer, upstream_account=upstream, upstream_id=f"{name.upper()}-SUB"
        )
        staff = StaffUserFactory(reseller=reseller, username=f"staff-{key}")
        data[key] = {
            "reseller": reseller,
            "customer": customer,
            "upstream": upstream,
            "sub": sub,
            "staff": staff,
        }
    return data


def _url(model, action, *args):
    return reverse(f"admin:accounts_{model._meta.model_name}_{action}", args=args)


@pytest.mark.parametrize("model", [Customer, UpstreamAccount, SubAccount])
@pytest.mark.slow
def test_change_list_shows_only_own_rows(client, two_resellers, model):
    client.force_login(two_resellers["a"]["staff"])

    html = client.get(_url(model, "changelist")).content.decode()

    assert "Alpha" in html or "ALPHA" in html
    assert "Bravo" not in html and "BRAVO" not in html


@pytest.mark.parametrize(
    ("model", "key"), [(Customer, "customer"), (UpstreamAccount, "upstream"), (SubAccount, "sub")]
)
def test_change_page_of_other_reseller_is_404(client, two_resellers, model, key):
    client.force_login(two_resellers["a"]["staff"])
    own = two_resellers["a"][key]
    foreign = two_resellers["b"][key]

    assert client.get(_url(model, "change", own.pk)).status_code == 200
    assert client.get(_url(model, "change", foreign.pk)).status_code == 404
    assert client.get(_url(model, "history", foreign.pk)).status_code == 404
    assert client.post(_url(model, "delete", foreign.pk), {"post": "yes"}).status_code == 404
    assert client.get(_url(model, "change", "not-a-number")).status_code == 404
    assert model.objects.filter(pk=foreign.pk).exists()


def test_search_does_not_reach_other_reseller(client, two_resellers):
    client.force_login(two_resellers["a"]["staff"])

    html = client.get(_url(Customer, "changelist"), {"q": "Bravo"}).content.decode()

    assert "Bravo Customer" not in html
    assert "0 results" in html


def test_foreign_key_choices_are_scoped(client, two_resellers):
    client.force_login(two_resellers["a"]["staff"])

    html = client.get(_url(SubAccount, "add")).content.decode()

    assert "Alpha IPFoxy" in html
    assert "Bravo IPFoxy" not in html


def test_autocomplete_for_customers_is_scoped(client, two_resellers):
    client.force_login(two_resellers["a"]["staff"])

    response = client.get(
        reverse("admin:autocomplete"),
        {
            "term": "Customer",
            "app_label": "accounts",
            "model_name": "subaccount",
            "field_name": "customer",
        },
    )

    names = [row["text"] for row in response.json()["results"]]
    assert names == ["Alpha Customer"]


def test_posting_a_foreign_upstream_account_is_rejected(client, two_resellers):
    a, b = two_resellers["a"], two_resellers["b"]
    client.force_login(a["staff"])

    response = client.post(
        _url(SubAccount, "add"),
        {
            "customer": a["customer"].pk,
            "upstream_account": b["upstream"].pk,
            "upstream_id": "SNEAKY",
            "status": "active",
        },
    )

    assert response.status_code == 200  # the form is shown again with an error
    assert "Select a valid choice" in response.content.decode()
    assert not SubAccount.objects.filter(upstream_id="SNEAKY").exists()


def test_staff_creates_customer_for_own_reseller_only(client, two_resellers):
    a, b = two_resellers["a"], two_resellers["b"]
    client.force_login(a["staff"])

    response = client.post(
        _url(Customer, "add"),
        {
            "reseller": b["reseller"].pk,  # tampered: ignored, the field is fixed for staff
            "name": "New Customer",
            "email": "new@example.com",
            "tax_rate": "0",
            "status": "active",
        },
    )

    assert response.status_code == 302
    created = Customer.objects.get(name="New Customer")
    assert created.reseller == a["reseller"]
    assert created.currency == a["reseller"].currency


def test_superuser_sees_every_reseller(admin_client, two_resellers):
    html = admin_client.get(_url(Customer, "changelist")).content.decode()

    assert "Alpha Customer" in html
    assert "Bravo Customer" in html


def test_staff_without_reseller_sees_nothing(client, two_resellers):
    user = StaffUserFactory(reseller=None, username="stray")
    client.force_login(user)

    assert client.get(_url(Customer, "changelist")).status_code == 403
