"""`/api/v1/reseller/usage-alert-rules/`: CRUD with validation, strict filters, tenancy."""

import pytest

from accounts.models import Provider
from tests import factories
from usage.models import UsageAlert, UsageAlertRule

URL = "/api/v1/reseller/usage-alert-rules/"
GIB = 1_073_741_824


@pytest.fixture
def bytesflows_sub(customer):
    upstream = factories.UpstreamAccountFactory(
        reseller=customer.reseller, provider=Provider.BYTESFLOWS, credentials={}
    )
    return factories.SubAccountFactory(customer=customer, upstream_account=upstream)


@pytest.mark.django_db
def test_create_a_quota_rule(reseller_api, customer):
    response = reseller_api.post(
        URL, {"customer": customer.pk, "quota_gb": "500", "percent": 80}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    rule = UsageAlertRule.objects.get(pk=body["id"])
    assert body["kind"] == "quota_share" and body["quota_gb"] == "500.000000"
    assert body["percent"] == 80 and body["unit_bytes"] == GIB
    assert body["sub_account"] is None and body["notify_customer"] is True
    assert (rule.customer_id, rule.percent) == (customer.pk, 80)


@pytest.mark.django_db
def test_create_a_remaining_rule_on_a_bytesflows_sub_account(
    reseller_api, customer, bytesflows_sub
):
    response = reseller_api.post(
        URL,
        {
            "customer": customer.pk,
            "kind": "remaining_below",
            "remaining_gb": "2.5",
            "sub_account": bytesflows_sub.pk,
            "unit_bytes": 1_000_000_000,
            "notify_customer": False,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["sub_account"] == bytesflows_sub.pk
    assert response.json()["remaining_gb"] == "2.500000"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"quota_gb", "percent"}),
        ({"quota_gb": "0", "percent": 80}, {"quota_gb"}),
        ({"quota_gb": "100", "percent": 0}, {"percent"}),
        ({"quota_gb": "100", "percent": 1001}, {"percent"}),
        ({"quota_gb": "100", "percent": 80, "remaining_gb": "5"}, {"remaining_gb"}),
        ({"kind": "remaining_below"}, {"remaining_gb"}),
        ({"kind": "remaining_below", "remaining_gb": "-1"}, {"remaining_gb"}),
        ({"kind": "remaining_below", "remaining_gb": "1", "percent": 50}, {"percent"}),
        ({"kind": "sometimes", "quota_gb": "1", "percent": 5}, {"kind"}),
        ({"quota_gb": "1", "percent": 5, "unit_bytes": 1000}, {"unit_bytes"}),
        ({"quota_gb": "1", "percent": 5, "colour": "red"}, {"colour"}),
    ],
)
def test_invalid_rules_are_a_400_naming_the_fields(reseller_api, customer, body, fields):
    response = reseller_api.post(URL, {"customer": customer.pk, **body}, format="json")
    assert response.status_code == 400, response.json()
    assert set(response.json()["extra"]["fields"]) == fields
    assert not UsageAlertRule.objects.exists()


@pytest.mark.django_db
def test_sub_account_must_be_the_customers_and_bytesflows_for_remaining_rules(
    reseller_api, reseller, customer, sub_account
):
    other_customer = factories.CustomerFactory(reseller=reseller)
    wrong_customer = reseller_api.post(
        URL,
        {
            "customer": other_customer.pk,
            "quota_gb": "1",
            "percent": 5,
            "sub_account": sub_account.pk,
        },
        format="json",
    )
    assert wrong_customer.status_code == 400
    assert "sub_account" in wrong_customer.json()["extra"]["fields"]

    ipfoxy = reseller_api.post(
        URL,
        {
            "customer": customer.pk,
            "kind": "remaining_below",
            "remaining_gb": "1",
            "sub_account": sub_account.pk,
        },
        format="json",
    )
    assert ipfoxy.status_code == 400
    assert ipfoxy.json()["extra"]["fields"]["sub_account"] == [
        "Remaining-traffic rules watch BytesFlows sub-accounts only."
    ]


@pytest.mark.django_db
def test_another_resellers_customer_sub_account_and_rule_are_refused(reseller_api, customer):
    foreign_sub = factories.SubAccountFactory()
    foreign_rule = UsageAlertRule.objects.create(
        customer=foreign_sub.customer, quota_gb=1, percent=10
    )
    response = reseller_api.post(
        URL, {"customer": foreign_sub.customer_id, "quota_gb": "1", "percent": 5}, format="json"
    )
    assert response.status_code == 400
    assert "does not exist" in response.json()["extra"]["fields"]["customer"][0]
    response = reseller_api.post(
        URL,
        {"customer": customer.pk, "quota_gb": "1", "percent": 5, "sub_account": foreign_sub.pk},
        format="json",
    )
    assert "does not exist" in response.json()["extra"]["fields"]["sub_account"][0]
    for method in ("get", "patch", "delete"):
        assert getattr(reseller_api, method)(f"{URL}{foreign_rule.pk}/").status_code == 404
    assert reseller_api.get(f"{URL}?customer={foreign_sub.customer_id}").status_code == 404
    assert reseller_api.get(URL).json()["count"] == 0
    assert UsageAlertRule.objects.filter(pk=foreign_rule.pk).exists()


@pytest.mark.django_db
def test_update_and_delete(reseller_api, customer):
    rule = UsageAlertRule.objects.create(customer=customer, quota_gb=100, percent=80)
    UsageAlert.objects.create(
        rule=rule,
        period_start="2026-10-01",
        fired_at="2026-10-20T00:00:00Z",
        measured_bytes=1,
        threshold_bytes=1,
        message="m",
    )
    url = f"{URL}{rule.pk}/"

    changed = reseller_api.patch(url, {"percent": 90, "is_active": False}, format="json")
    assert changed.status_code == 200
    assert (changed.json()["percent"], changed.json()["is_active"]) == (90, False)
    rule.refresh_from_db()
    assert (rule.percent, rule.is_active) == (90, False)

    immutable = reseller_api.patch(url, {"customer": customer.pk}, format="json")
    assert immutable.json()["extra"]["fields"] == {"customer": ["This field cannot be changed."]}
    switched = reseller_api.patch(url, {"kind": "remaining_below"}, format="json")
    assert switched.status_code == 400
    assert set(switched.json()["extra"]["fields"]) == {"remaining_gb", "quota_gb", "percent"}

    assert reseller_api.delete(url).status_code == 204
    assert not UsageAlertRule.objects.filter(pk=rule.pk).exists()
    assert not UsageAlert.objects.exists()


@pytest.mark.django_db
def test_list_filters(reseller_api, reseller, customer, bytesflows_sub):
    other = factories.CustomerFactory(reseller=reseller)
    quota = UsageAlertRule.objects.create(customer=customer, quota_gb=100, percent=80)
    remaining = UsageAlertRule.objects.create(
        customer=customer, kind="remaining_below", remaining_gb=1, is_active=False
    )
    others = UsageAlertRule.objects.create(customer=other, quota_gb=5, percent=100)

    def ids(query=""):
        response = reseller_api.get(URL + query)
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["results"]]

    assert ids() == [quota.pk, remaining.pk, others.pk]
    assert ids(f"?customer={customer.pk}") == [quota.pk, remaining.pk]
    assert ids("?kind=remaining_below") == [remaining.pk]
    assert ids("?is_active=true") == [quota.pk, others.pk]
    assert ids("?is_active=false") == [remaining.pk]
    assert reseller_api.get(URL + "?kind=x").status_code == 400
    assert reseller_api.get(URL + "?is_active=maybe").status_code == 400
    assert reseller_api.get(URL + "?sub_account=1").status_code == 400
