"""OpenAPI: the schema generates without warnings; the docs page uses no CDN."""

import re
from io import StringIO

import pytest
import yaml
from django.core.management import call_command

pytestmark = pytest.mark.slow  # every test here is over 2 s or shares one that is


@pytest.fixture(scope="module")
def schema() -> dict:
    out = StringIO()
    # --fail-on-warn turns every drf-spectacular warning or error into a failure.
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    return yaml.safe_load(out.getvalue())


def test_schema_generates_clean_with_the_api_key_scheme(schema):
    assert schema["components"]["securitySchemes"]["ApiKeyAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": schema["components"]["securitySchemes"]["ApiKeyAuth"]["description"],
    }
    assert {"ApiKeyAuth": []} in schema["paths"]["/api/v1/me/"]["get"]["security"]


def test_schema_lists_the_accounts_endpoints(schema):
    assert {
        "/api/v1/me/",
        "/api/v1/sub-accounts/",
        "/api/v1/reseller/upstream-accounts/",
        "/api/v1/reseller/upstream-accounts/{id}/",
        "/api/v1/reseller/customers/",
        "/api/v1/reseller/customers/{id}/",
        "/api/v1/reseller/customers/{customer_pk}/api-keys/",
        "/api/v1/reseller/customers/{customer_pk}/api-keys/{key_pk}/",
        "/api/v1/reseller/sub-accounts/",
        "/api/v1/reseller/sub-accounts/{id}/",
    } <= set(schema["paths"])


def test_credentials_are_write_only_in_the_schema(schema):
    components = schema["components"]["schemas"]
    assert "credentials" in components["UpstreamAccountCreateInputRequest"]["properties"]
    assert "credentials" in components["SubAccountCreateInputRequest"]["properties"]
    for name, component in components.items():
        if not name.endswith("Request"):
            assert "credentials" not in component.get("properties", {}), name


def test_errors_are_documented_in_the_one_shape(schema):
    get_detail = schema["paths"]["/api/v1/reseller/customers/{id}/"]["get"]["responses"]
    for code in ("401", "403", "404", "429"):
        ref = get_detail[code]["content"]["application/json"]["schema"]["$ref"]
        assert ref == "#/components/schemas/ApiError"


@pytest.mark.django_db
def test_swagger_ui_loads_only_local_assets(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert not re.search(r"https?://", html), re.findall(r"https?://[^\"' ]+", html)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(a.startswith("/static/drf_spectacular_sidecar/") for a in assets), assets


@pytest.mark.django_db
def test_schema_endpoint_is_served_without_a_key(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert "/api/v1/me/" in response.json()["paths"]


def test_input_bodies_forbid_unknown_properties_like_the_api(schema):
    components = schema["components"]["schemas"]
    inputs = [name for name in components if name.endswith("InputRequest")]
    assert len(inputs) >= 7
    assert all(components[name]["additionalProperties"] is False for name in inputs)


def test_throttled_responses_document_retry_after(schema):
    response = schema["paths"]["/api/v1/me/"]["get"]["responses"]["429"]
    assert response["headers"]["Retry-After"]["schema"] == {"type": "integer"}


def test_schema_lists_the_billing_endpoints_with_their_contract(schema):
    paths = schema["paths"]
    assert {
        "/api/v1/reseller/plans/",
        "/api/v1/reseller/plans/{id}/",
        "/api/v1/reseller/subscriptions/",
        "/api/v1/reseller/subscriptions/{id}/",
        "/api/v1/reseller/invoices/",
        "/api/v1/reseller/invoices/{id}/",
        "/api/v1/reseller/invoices/{id}/pdf/",
        "/api/v1/reseller/invoices/{id}/finalize/",
        "/api/v1/reseller/invoices/{id}/void/",
        "/api/v1/reseller/invoices/{id}/mark-paid/",
        "/api/v1/invoices/",
        "/api/v1/invoices/{id}/",
        "/api/v1/invoices/{id}/pdf/",
        "/api/v1/usage/current/",
    } <= set(paths)
    components = schema["components"]["schemas"]
    invoice = components["InvoiceOutput"]["properties"]
    assert {
        "id", "number", "status", "period_start", "period_end", "currency", "subtotal", "tax",
        "total", "issued_on", "due_on", "lines",
    } <= set(invoice)  # fmt: skip
    assert (
        "customer" not in invoice
        and "customer" in components["ResellerInvoiceOutput"]["properties"]
    )
    line = components["InvoiceLineOutput"]["properties"]
    assert {"kind", "description", "sub_account", "quantity", "unit_price", "amount"} <= set(line)
    assert components["InvoiceLineKindEnum"]["enum"] == [
        "base_fee",
        "usage",
        "minimum",
        "adjustment",
        "top_up",
    ]
    assert components["InvoiceKindEnum"]["enum"] == ["period", "top_up"]
    assert components["InvoiceStatusEnum"]["enum"] == ["draft", "finalized", "paid", "void"]
    assert invoice["total"]["type"] == "string"
    plan = components["PlanCreateInputRequest"]["properties"]
    assert {
        "code", "name", "currency", "base_fee", "pricing_model", "tiers", "package_size",
        "package_price", "minimum_charge", "unit_bytes",
    } == set(plan)  # fmt: skip
    pdf = paths["/api/v1/invoices/{id}/pdf/"]["get"]["responses"]
    assert list(pdf["200"]["content"]) == ["application/pdf"]
    assert list(pdf["404"]["content"]) == ["application/json"]
    for action in ("finalize", "void", "mark-paid"):
        responses = paths[f"/api/v1/reseller/invoices/{{id}}/{action}/"]["post"]["responses"]
        assert {"200", "400", "404", "409"} <= set(responses), action
    params = {p["name"] for p in paths["/api/v1/reseller/invoices/"]["get"]["parameters"]}
    assert params == {"period", "status", "overdue", "customer", "limit", "offset"}
