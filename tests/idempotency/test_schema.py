"""OpenAPI: every POST of the API documents `Idempotency-Key`, its 409s and the replay
header; the new endpoints are in the schema."""

from io import StringIO

import pytest
import yaml
from django.core.management import call_command


@pytest.fixture(scope="module")
def schema() -> dict:
    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    return yaml.safe_load(out.getvalue())


@pytest.mark.slow
def test_every_post_documents_the_idempotency_key_header_and_its_409(schema):
    posts = {
        path: operations["post"]
        for path, operations in schema["paths"].items()
        if path.startswith("/api/v1/") and "post" in operations
    }
    assert len(posts) >= 8
    for path, operation in posts.items():
        (header,) = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
        assert header["in"] == "header" and header["required"] is False, path
        assert header["schema"]["maxLength"] == 255
        assert "409" in operation["responses"], path
        success = [code for code in operation["responses"] if code.startswith("2")]
        assert success and all(
            "Idempotent-Replayed" in operation["responses"][code]["headers"] for code in success
        ), path
    get = schema["paths"]["/api/v1/reseller/customers/"]["get"]
    assert not any(p["name"] == "Idempotency-Key" for p in get.get("parameters", []))


def test_the_new_endpoints_are_in_the_schema(schema):
    assert {
        "/api/v1/reseller/sync-runs/",
        "/api/v1/reseller/sync-runs/{id}/",
        "/api/v1/reseller/usage-alert-rules/",
        "/api/v1/reseller/usage-alert-rules/{id}/",
        "/api/v1/reseller/webhook-endpoints/",
        "/api/v1/reseller/webhook-endpoints/{id}/",
        "/api/v1/reseller/webhook-endpoints/{id}/rotate-secret/",
        "/api/v1/reseller/webhook-deliveries/",
        "/api/v1/reseller/webhook-deliveries/{id}/",
        "/api/v1/reseller/webhook-deliveries/{id}/replay/",
        "/api/v1/reseller/webhook-events/",
    } <= set(schema["paths"])
    events = schema["components"]["schemas"]["WebhookEventTypeEnum"]["enum"]
    assert events == [
        "invoice.finalized",
        "invoice.paid",
        "invoice.voided",
        "invoice.overdue",
        "credit_note.created",
        "payment.created",
        "payment.refunded",
        "usage.alert",
        "sync.failed",
        "customer.suspended",
        "customer.reinstated",
        "customer.credit_limit_reached",
        "customer.balance_changed",
        "sub_account.provisioned",
        "allocation.confirmed",
        "allocation.failed",
    ]
