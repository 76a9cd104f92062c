"""schemathesis against `/api/schema/`: generated requests to every operation, with a
reseller key on `/api/v1/reseller/...` and a customer key elsewhere. Checks: no server
error, documented status codes, content types and headers, bodies matching the schema.

Bounded: a few examples per operation (the whole file runs in well under two minutes).
`POST reseller/sync/` is left out: an accepted sync calls the upstreams (the network).
"""

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import World

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


# Loaded at collection from the app itself (the schema view reads no database).
schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application()).exclude(
    path="/api/v1/reseller/sync/", method="POST"
)


@pytest.fixture(autouse=True)
def keep_the_test_connection_open():
    """Requests here go straight to the WSGI app, not through Django's test Client, so
    Django's end-of-request `close_old_connections` would close the test's transaction on
    PostgreSQL ("the connection is closed"). Detach it for the test, as the Client does."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=10,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.django_db
def test_every_operation_answers_within_its_schema(case, world: World):
    tenant = world.tenants[0]
    reseller_scope = case.operation.path.startswith("/api/v1/reseller/")
    key = tenant.reseller_key if reseller_scope else tenant.customer_keys[0]
    case.call_and_validate(headers={"Authorization": f"Api-Key {key}"}, checks=CHECKS)
