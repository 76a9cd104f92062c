"""API test fixtures: clients with keys, and a two-reseller world for isolation tests."""

from dataclasses import dataclass, field

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.api_keys import api_key_create
from accounts.models import Customer, Provider, Reseller, SubAccount, UpstreamAccount
from tests import factories


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    """Throttle counters live in the cache; ids repeat between tests, so start clean."""
    cache.clear()
    yield
    cache.clear()


def key_client(raw_key: str | None) -> APIClient:
    client = APIClient()
    if raw_key is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    return client


@pytest.fixture
def reseller_key(reseller) -> str:
    return api_key_create(reseller=reseller, name="storefront")[1]


@pytest.fixture
def reseller_api(reseller_key) -> APIClient:
    return key_client(reseller_key)


@dataclass
class Tenant:
    reseller: Reseller
    upstream: UpstreamAccount
    bytesflows: UpstreamAccount
    customers: list[Customer]
    sub_accounts: list[SubAccount]
    reseller_key: str
    customer_keys: list[str]
    #: Strings that only this tenant's responses may contain.
    markers: list[str] = field(default_factory=list)


@dataclass
class World:
    tenants: list[Tenant]

    def api_keys(self):
        """(label, raw key, tenant, customer or None) for every key in the world."""
        for t_index, tenant in enumerate(self.tenants):
            yield f"reseller{t_index}", tenant.reseller_key, tenant, None
            for c_index, customer in enumerate(tenant.customers):
                yield (
                    f"customer{t_index}.{c_index}",
                    tenant.customer_keys[c_index],
                    tenant,
                    customer,
                )


#: Secrets stored in the world's credentials; no response may ever contain one.
WORLD_SECRETS = ("ipfoxy-token-SECRET", "bytesflows-token-SECRET")


@pytest.fixture
def world(db) -> World:
    """Two resellers, two customers each, each customer with one IPFoxy and one BytesFlows
    sub-account and its own key; every name carries its tenant's marker."""
    tenants = []
    for t in ("ALPHA", "BRAVO"):
        reseller = factories.ResellerFactory(name=f"{t} Proxies Ltd", slug=t.lower())
        upstream = factories.UpstreamAccountFactory(
            reseller=reseller,
            name=f"{t}-ipfoxy",
            credentials={"api_id": f"{t}-id", "api_token": f"{t}-ipfoxy-token-SECRET"},
        )
        bytesflows = factories.UpstreamAccountFactory(
            reseller=reseller, name=f"{t}-bytesflows", provider=Provider.BYTESFLOWS, credentials={}
        )
        customers, subs, keys = [], [], []
        for c in (1, 2):
            customer = factories.CustomerFactory(
                reseller=reseller, name=f"{t}-customer-{c}", email=f"{t.lower()}{c}@example.com"
            )
            customers.append(customer)
            subs.append(
                factories.SubAccountFactory(
                    customer=customer,
                    upstream_account=upstream,
                    upstream_id=f"{t}-IPF-{c}",
                    label=f"{t}-label-ipf-{c}",
                )
            )
            subs.append(
                factories.SubAccountFactory(
                    customer=customer,
                    upstream_account=bytesflows,
                    upstream_id=f"{t}-BF-{c}",
                    label=f"{t}-label-bf-{c}",
                    credentials={"token": f"{t}-bytesflows-token-SECRET"},
                )
            )
            keys.append(
                api_key_create(reseller=reseller, customer=customer, name=f"{t}-key-{c}")[1]
            )
        tenants.append(
            Tenant(
                reseller=reseller,
                upstream=upstream,
                bytesflows=bytesflows,
                customers=customers,
                sub_accounts=subs,
                reseller_key=api_key_create(reseller=reseller, name=f"{t}-reseller-key")[1],
                customer_keys=keys,
                markers=[t],
            )
        )
    return World(tenants=tenants)
