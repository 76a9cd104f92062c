"""`GET reseller/customers/{id}/exposure/`: the exposure selector's parts as decimal strings."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.services import customer_update
from billing.balance.services import balance_adjust
from billing.invoicing.periods import period_containing
from tests import factories
from tests.billing.factories import PlanFactory, SubscriptionFactory, add_usage
from usage.models import SubAccountTraffic

R = "/api/v1/reseller"
GIB = 1_073_741_824


@pytest.mark.django_db
def test_exposure_answers_the_parts_the_limit_and_the_room_left(reseller_api, reseller):
    open_month = period_containing(tz=reseller.tzinfo, now=timezone.now())
    customer = factories.CustomerFactory(reseller=reseller)
    SubscriptionFactory(
        customer=customer, plan=PlanFactory(reseller=reseller), starts_on=open_month.start
    )
    sub = factories.SubAccountFactory(customer=customer, upstream_id="FBEXPOSURE001")
    add_usage(sub, open_month.start, 1, 98)  # 98 GiB: in the free 100, base fee 10.00
    SubAccountTraffic.objects.create(
        sub_account=sub,
        allocated_bytes=12 * GIB,
        used_bytes=0,
        remaining_bytes=12 * GIB,  # 2 GiB free, 10 GiB at 2.50: 25.00
        as_of=timezone.now() - dt.timedelta(minutes=1),
    )
    customer_update(
        customer=customer,
        traffic_policy="credit_limit",
        credit_limit=Decimal("100.00"),
        topup_bytes=10 * GIB,
        topup_below_bytes=GIB,
    )

    response = reseller_api.get(f"{R}/customers/{customer.pk}/exposure/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body.pop("as_of")
    assert body == {
        "customer": customer.pk,
        "currency": "USD",
        "traffic_policy": "credit_limit",
        "credit_limit": "100.00",
        "credit_limit_reached_at": None,
        "topup_bytes": 10 * GIB,
        "topup_below_bytes": GIB,
        "balance_due": "0.00",
        "unissued": "0.00",
        "usage_so_far": "10.00",
        "unused_traffic": "25.00",
        "unused_bytes": 12 * GIB,
        "customer_balance": "0.00",
        "total": "35.00",
        "available": "65.00",
        "period_start": open_month.start.isoformat(),
        "period_end": open_month.end.isoformat(),
    }

    # Prepaid credit is subtracted: more of it than is owed makes the total negative.
    balance_adjust(customer=customer, amount="50.00", reason="prepaid", now=timezone.now())
    body = reseller_api.get(f"{R}/customers/{customer.pk}/exposure/").json()
    assert (body["balance_due"], body["customer_balance"]) == ("0.00", "50.00")
    assert (body["total"], body["available"]) == ("-15.00", "115.00")


@pytest.mark.django_db
def test_exposure_of_a_manual_customer_has_no_limit_and_others_are_404(reseller_api, reseller):
    customer = factories.CustomerFactory(reseller=reseller)
    body = reseller_api.get(f"{R}/customers/{customer.pk}/exposure/").json()
    assert (body["traffic_policy"], body["credit_limit"], body["available"]) == (
        "manual",
        None,
        None,
    )
    assert body["total"] == "0.00"
    stranger = factories.CustomerFactory()
    assert reseller_api.get(f"{R}/customers/{stranger.pk}/exposure/").status_code == 404
