"""schemathesis against `/api/schema/`: generated requests to every operation, with a
reseller key on `/api/v1/reseller/...` and a customer key elsewhere. Checks: no server
error, documented status codes, content types and headers, bodies matching the schema.

Bounded: a few examples per operation (the whole file runs in well under two minutes).
`POST reseller/sync/` is left out: an accepted sync calls the upstreams (the network); the
manual add's upstream check (`reseller/sub-accounts/`) is stood in for by an upstream that
lists every id (`upstream_lists_every_id`).

A second run sends hostile numbers (issue 15): exponents, underscores, non-ASCII digits and
oversized values in every decimal body field, integers past the BigInteger range in every
integer query parameter; none may answer 5xx.
"""

import copy
import itertools

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from core.query import MAX_BIGINT
from tests.api.conftest import World

pytestmark = pytest.mark.slow  # every test here is over 2 s or shares one that is

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
def test_every_operation_answers_within_its_schema(case, world: World, upstream_lists_every_id):
    tenant = world.tenants[0]
    reseller_scope = case.operation.path.startswith("/api/v1/reseller/")
    key = tenant.reseller_key if reseller_scope else tenant.customer_keys[0]
    case.call_and_validate(headers={"Authorization": f"Api-Key {key}"}, checks=CHECKS)


# --- hostile numbers (issue 15) -----------------------------------------------------------------
#
# The same operations again, each example with ONE number a client could send but the API
# must refuse: a decimal field (`format: decimal` in a request body, found in the schema) set
# to an exponent, underscores, non-ASCII digits, too many digits or a JSON number; or an
# integer query parameter (or a public id such as `evt_<id>`) past the BigInteger range.
# Path ids point at the world's real objects, so bodies reach the parsers instead of a 404.
# Nothing may answer 5xx; every refusal is documented and in the error shape.

HOSTILE_DECIMALS = st.one_of(
    st.sampled_from(["1e400", "1E+999999", "1_0", "١٢", "１２", "NaN", "-Infinity", "0x10", ".5"]),
    st.from_regex(r"\A[1-9][0-9]{0,2}[eE][+-]?[0-9]{1,7}\Z"),  # exponent forms
    st.from_regex(r"\A[0-9]{1,3}(_[0-9]{1,3}){1,3}\Z"),  # underscores
    st.text(  # digits of other scripts (Arabic-Indic, Devanagari, fullwidth...)
        st.characters(categories=["Nd"], exclude_characters="0123456789"), min_size=1, max_size=6
    ),
    st.integers(min_value=10**14, max_value=10**400).map(str),  # more digits than any column
    st.integers(min_value=10**14, max_value=10**40),  # the same as a JSON number
    st.floats(allow_nan=False, allow_infinity=False),  # a JSON number with a fraction
)
HOSTILE_INTEGERS = st.one_of(
    st.integers(min_value=MAX_BIGINT + 1, max_value=10**60),
    st.integers(min_value=-(10**60), max_value=-(2**63) - 1),
)


def _resolve(node: dict) -> dict:
    while "$ref" in node:
        node = schema.raw_schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _decimal_paths(node: dict, prefix: tuple = (), depth: int = 0) -> list[tuple]:
    """Paths (`("tiers", "*", "unit_price")`) of the decimal fields of a request body."""
    node = _resolve(node)
    if depth > 4:
        return []
    found = []
    for part in node.get("allOf", []) + node.get("oneOf", []):
        found += _decimal_paths(part, prefix, depth + 1)
    if node.get("type") == "array":
        found += _decimal_paths(node.get("items", {}), (*prefix, "*"), depth + 1)
    for name, prop in node.get("properties", {}).items():
        resolved = _resolve(prop)
        if resolved.get("format") == "decimal" and not resolved.get("readOnly"):
            found.append((*prefix, name))
        else:
            found += _decimal_paths(resolved, (*prefix, name), depth + 1)
    return found


def _hostile_targets() -> tuple[dict, dict]:
    bodies, queries = {}, {}
    for path, item in schema.raw_schema["paths"].items():
        for method, operation in item.items():
            label = f"{method.upper()} {path}"
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                paths = _decimal_paths(content["application/json"]["schema"])
                if paths:
                    bodies[label] = paths
            params = []
            for parameter in operation.get("parameters", []):
                spec = parameter.get("schema", {})
                if parameter["in"] != "query":
                    continue
                if spec.get("type") == "integer":
                    params.append((parameter["name"], None))
                elif spec.get("pattern", "").startswith("^evt_"):
                    params.append((parameter["name"], "evt"))
            if params:
                queries[label] = params
    return bodies, queries


BODY_TARGETS, QUERY_TARGETS = _hostile_targets()


def _set(body: dict, path: tuple, value):
    body = copy.deepcopy(body)
    node = body
    for key, following in itertools.pairwise(path):
        container = list if following == "*" else dict
        if key == "*":  # the first item, made the right kind (the generator may give [[]])
            if not node or not isinstance(node[0], container):
                node[:1] = [container()]
            node = node[0]
        else:
            if not isinstance(node.get(key), container):
                node[key] = container()
            node = node[key]
    node[path[-1]] = value
    return body


def flatmap_body(context, body):
    paths = BODY_TARGETS.get(context.operation.label)
    if not paths or not isinstance(body, dict):
        return st.just(body)
    return st.tuples(st.sampled_from(paths), HOSTILE_DECIMALS).map(lambda pv: _set(body, *pv))


def flatmap_query(context, query):
    params = QUERY_TARGETS.get(context.operation.label)
    if not params:
        return st.just(query)

    def hostile(choice):
        name, prefix = choice
        values = HOSTILE_INTEGERS if prefix is None else HOSTILE_INTEGERS.map(abs)
        return values.map(
            lambda n: {**(query or {}), name: str(n) if prefix is None else f"{prefix}_{n}"}
        )

    return st.sampled_from(params).flatmap(hostile)


hostile_schema = schema.include(
    func=lambda ctx: ctx.operation.label in BODY_TARGETS or ctx.operation.label in QUERY_TARGETS
)


def _real_ids(world: World) -> dict[str, int]:
    """The id a path parameter gets, by the path segment before it."""
    tenant = world.tenants[0]
    return {
        "customers": tenant.customers[0].pk,
        "invoices": tenant.issued[0].pk,
        "plans": tenant.plan.pk,
        "subscriptions": tenant.subscriptions[0].pk,
        "sub-accounts": tenant.sub_accounts[0].pk,
        "upstream-accounts": tenant.upstream.pk,
    }


@hostile_schema.hooks.apply(flatmap_query)
@hostile_schema.hooks.apply(flatmap_body)
@hostile_schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.django_db
def test_hostile_numbers_are_refused_without_a_server_error(
    case, world: World, upstream_lists_every_id
):
    tenant = world.tenants[0]
    reseller_scope = case.operation.path.startswith("/api/v1/reseller/")
    key = tenant.reseller_key if reseller_scope else tenant.customer_keys[0]
    ids, segments = _real_ids(world), case.operation.path.strip("/").split("/")
    for before, segment in itertools.pairwise(segments):
        if segment.startswith("{") and before in ids and case.path_parameters is not None:
            case.path_parameters[segment.strip("{}")] = ids[before]
    case.call_and_validate(headers={"Authorization": f"Api-Key {key}"}, checks=CHECKS)
