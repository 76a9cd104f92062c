"""Lists outside billing parse their query strictly (core.query.StrictQueryMixin): an
unknown parameter or a bad value is a 400 naming it, a foreign or missing id a 404, and
the filters really narrow the list."""

import pytest
from django.utils import timezone

from accounts.api_keys import api_key_create, api_key_revoke
from accounts.models import Customer, SubAccount
from tests import factories
from tests.api.conftest import key_client
from webhooks.services import webhook_endpoint_create, webhook_endpoint_update

R = "/api/v1/reseller"


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def _bad(response) -> dict:
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "validation_error"
    return response.json()["extra"]["fields"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "upstream-accounts/",
        "customers/",
        "api-keys/",
        "sub-accounts/",
        "sync-runs/",
        "usage-alert-rules/",
        "webhook-endpoints/",
        "webhook-deliveries/",
        "webhook-events/",
    ],
)
def test_every_reseller_list_refuses_an_unknown_parameter(reseller_api, path):
    fields = _bad(reseller_api.get(f"{R}/{path}?custmer=1&limit=5"))
    assert fields == {"custmer": ["Unknown query parameter."]}
    assert reseller_api.get(f"{R}/{path}?limit=5&offset=0").status_code == 200


@pytest.mark.django_db
def test_customer_api_keys_and_my_sub_accounts_are_strict(reseller_api, reseller):
    customer = factories.CustomerFactory(reseller=reseller)
    live, _ = api_key_create(reseller=reseller, customer=customer, name="live")
    gone, _ = api_key_create(reseller=reseller, customer=customer, name="gone")
    api_key_revoke(api_key=gone, now=timezone.now())
    url = f"{R}/customers/{customer.pk}/api-keys/"
    assert _ids(reseller_api.get(f"{url}?revoked=true")) == [gone.pk]
    assert _ids(reseller_api.get(f"{url}?revoked=false")) == [live.pk]
    assert "revoked" in _bad(reseller_api.get(f"{url}?revoked=maybe"))
    assert "q" in _bad(reseller_api.get(f"{url}?q=x"))

    _, customer_key = api_key_create(reseller=reseller, customer=customer, name="c")
    active = factories.SubAccountFactory(customer=customer)
    factories.SubAccountFactory(customer=customer, status=SubAccount.Status.CLOSED)
    me = key_client(customer_key)
    assert _ids(me.get("/api/v1/sub-accounts/?status=active")) == [active.pk]
    assert _bad(me.get("/api/v1/sub-accounts/?status=gone")).keys() == {"status"}
    assert _bad(me.get("/api/v1/sub-accounts/?customer=1")).keys() == {"customer"}


@pytest.mark.django_db
def test_sub_account_filters_narrow_and_foreign_ids_are_404(reseller_api, reseller):
    first = factories.CustomerFactory(reseller=reseller)
    second = factories.CustomerFactory(reseller=reseller)
    a = factories.SubAccountFactory(customer=first)
    b = factories.SubAccountFactory(customer=second, upstream_account=a.upstream_account)
    c = factories.SubAccountFactory(customer=second, status=SubAccount.Status.SUSPENDED)
    foreign = factories.SubAccountFactory()  # another reseller's customer and upstream

    assert _ids(reseller_api.get(f"{R}/sub-accounts/?customer={second.pk}")) == [b.pk, c.pk]
    upstream = a.upstream_account_id
    assert _ids(reseller_api.get(f"{R}/sub-accounts/?upstream_account={upstream}")) == [
        a.pk,
        b.pk,
    ]
    assert _ids(reseller_api.get(f"{R}/sub-accounts/?customer={second.pk}&status=suspended")) == [
        c.pk
    ]
    for name, value in (
        ("customer", foreign.customer_id),
        ("upstream_account", foreign.upstream_account_id),
        ("customer", 999_999),
    ):
        response = reseller_api.get(f"{R}/sub-accounts/?{name}={value}")
        assert response.status_code == 404, (name, value)
    assert _bad(reseller_api.get(f"{R}/sub-accounts/?customer=abc")).keys() == {"customer"}
    assert _bad(reseller_api.get(f"{R}/sub-accounts/?customer=1&customer=2")) == {
        "customer": ["Give this parameter once."]
    }


@pytest.mark.django_db
def test_customer_upstream_and_webhook_endpoint_filters(reseller_api, reseller):
    ok = factories.CustomerFactory(reseller=reseller)
    held = factories.CustomerFactory(
        reseller=reseller, status=Customer.Status.SUSPENDED, suspended_at=timezone.now()
    )
    assert _ids(reseller_api.get(f"{R}/customers/?status=suspended")) == [held.pk]
    assert _ids(reseller_api.get(f"{R}/customers/?status=active")) == [ok.pk]
    assert "status" in _bad(reseller_api.get(f"{R}/customers/?status=deleted"))

    on = factories.UpstreamAccountFactory(reseller=reseller)
    off = factories.UpstreamAccountFactory(reseller=reseller, is_active=False)
    assert _ids(reseller_api.get(f"{R}/upstream-accounts/?is_active=false")) == [off.pk]
    assert _ids(reseller_api.get(f"{R}/upstream-accounts/?is_active=true")) == [on.pk]
    assert "provider" in _bad(reseller_api.get(f"{R}/upstream-accounts/?provider=acme"))

    live, _ = webhook_endpoint_create(
        reseller=reseller, url="https://hooks.example.com/a", enabled_events=["invoice.paid"]
    )
    paused, _ = webhook_endpoint_create(
        reseller=reseller, url="https://hooks.example.com/b", enabled_events=["invoice.paid"]
    )
    webhook_endpoint_update(endpoint=paused, is_active=False)
    assert _ids(reseller_api.get(f"{R}/webhook-endpoints/?is_active=false")) == [paused.pk]
    assert _ids(reseller_api.get(f"{R}/webhook-endpoints/?is_active=true")) == [live.pk]
