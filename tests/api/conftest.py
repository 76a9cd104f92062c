"""API test fixtures: clients with keys, and a two-reseller world for isolation tests."""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.api_keys import api_key_create
from accounts.models import Customer, Provider, Reseller, SubAccount, UpstreamAccount
from billing.invoicing.cycle import invoice_create_draft
from billing.invoicing.issuing import invoice_issue
from billing.models import Invoice, Plan, Subscription
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage
from usage.models import LedgerSnapshot


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
    plan: Plan | None = None
    subscriptions: list[Subscription] = field(default_factory=list)
    #: Per customer: its finalized September invoice, and its October draft.
    issued: list[Invoice] = field(default_factory=list)
    drafts: list[Invoice] = field(default_factory=list)

    @property
    def invoices(self) -> list[Invoice]:
        return [*self.issued, *self.drafts]


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


GIB = 1_073_741_824

#: Secrets stored in the world's credentials; no response may ever contain one.
WORLD_SECRETS = ("ipfoxy-token-SECRET", "bytesflows-token-SECRET")


SEPTEMBER = dt.date(2026, 9, 1)
OCTOBER = dt.date(2026, 10, 1)
AFTER_OCTOBER = dt.datetime(2026, 11, 3, 12, tzinfo=dt.UTC)


@pytest.fixture
def world(db, settings, tmp_path) -> World:
    """Two resellers, two customers each, each customer with one IPFoxy and one BytesFlows
    sub-account and its own key; every name carries its tenant's marker.

    Billing: each reseller has a plan its customers subscribe to; each customer used
    (c + 1) GiB a day in September (IPFoxy) and has a finalized September invoice and an
    October draft; its BytesFlows sub-account has a ledger snapshot (remaining traffic).
    """
    settings.MEDIA_ROOT = tmp_path  # invoice PDFs
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
        plan = PlanFactory(reseller=reseller, code=f"{t.lower()}-pro", name=f"{t}-plan")
        subscriptions, issued, drafts = [], [], []
        for c, customer in enumerate(customers):
            subscriptions.append(SubscriptionFactory(customer=customer, plan=plan))
            ipfoxy_sub, bytesflows_sub = subs[2 * c], subs[2 * c + 1]
            add_usage(ipfoxy_sub, SEPTEMBER, 30, c + 1)
            LedgerSnapshot.objects.create(
                sub_account=bytesflows_sub,
                taken_at=AFTER_OCTOBER,
                total_traffic=10 * GIB,
                available_traffic=(c + 1) * GIB,
                balance=Decimal("0"),
            )
            issued.append(
                invoice_issue(
                    customer=customer,
                    period_start=SEPTEMBER,
                    now=AFTER_OCTOBER,
                    send_email=False,
                )[0]
            )
            drafts.append(
                invoice_create_draft(customer=customer, period_start=OCTOBER, now=AFTER_OCTOBER)[0]
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
                plan=plan,
                subscriptions=subscriptions,
                issued=issued,
                drafts=drafts,
            )
        )
    return World(tenants=tenants)
