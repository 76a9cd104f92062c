"""OpenAPI completeness: what an integrator reads and what a generated client needs.

Every operation has a summary and a description; every JSON request body and every JSON
success response carries an example; every property of every component is described; error
codes are an enum that lists every code the services raise; and a client generated from the
schema with openapi-python-client works against a live server.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

pytestmark = pytest.mark.slow  # every test here is over 2 s or shares one that is

REPO = Path(__file__).resolve().parents[2]
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def schema() -> dict:
    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    return yaml.safe_load(out.getvalue())


def _operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", op


def test_every_operation_has_a_summary_and_a_description(schema):
    missing = [
        name
        for name, op in _operations(schema)
        if not op.get("summary", "").strip() or not op.get("description", "").strip()
    ]
    assert missing == []


def test_every_json_request_and_success_response_has_an_example(schema):
    missing = []
    for name, op in _operations(schema):
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None and not (body.get("examples") or body.get("example")):
            missing.append(f"{name} request")
        for status, response in op.get("responses", {}).items():
            content = response.get("content", {}).get("application/json")
            has_example = content is not None and (
                content.get("examples") or content.get("example")
            )
            if status.startswith("2") and content is not None and not has_example:
                missing.append(f"{name} {status}")
    assert missing == []


def test_every_example_fits_its_schema(schema):
    """Examples are what integrators copy: each must have the shape the schema promises
    (a list example is one item inside the pagination envelope, not a nested list)."""
    from jsonschema import Draft202012Validator

    from tests.api.schema_check import json_schema

    components = json_schema(schema["components"])
    checked, wrong = 0, []
    for name, op in _operations(schema):
        bodies = [("request", op.get("requestBody", {}).get("content", {}))]
        bodies += [(status, r.get("content", {})) for status, r in op.get("responses", {}).items()]
        for where, content in bodies:
            media = content.get("application/json")
            if not media or "schema" not in media:
                continue
            validator = Draft202012Validator(
                {**json_schema(media["schema"]), "components": components}
            )
            for title, ex in media.get("examples", {}).items():
                checked += 1
                errors = list(validator.iter_errors(ex["value"]))
                if errors:
                    wrong.append(f"{name} {where} {title!r}: {errors[0].message[:120]}")
    assert checked > 100
    assert wrong == []


def test_every_component_property_is_described(schema):
    components = schema["components"]["schemas"]
    missing = [
        f"{name}.{prop}"
        for name, component in components.items()
        for prop, spec in component.get("properties", {}).items()
        if not spec.get("description", "").strip()
    ]
    assert missing == []


def _raised_codes() -> set[str]:
    pattern = re.compile(r"ApplicationError\(\s*\n?\s*[\"']([a-z][a-z0-9_]+)[\"']")
    codes: set[str] = set()
    for folder in ("accounts", "usage", "billing", "config", "webhooks", "idempotency"):
        for path in (REPO / folder).rglob("*.py"):
            if "migrations" not in path.parts:
                codes |= set(pattern.findall(path.read_text()))
    return codes


def test_error_codes_are_an_enum_listing_every_code_the_services_raise(schema):
    code = schema["components"]["schemas"]["ApiError"]["properties"]["code"]
    # OpenAPI 3.0 cannot put a description next to a $ref: drf-spectacular wraps it in allOf.
    ref = code.get("$ref") or next(
        (part["$ref"] for part in code.get("allOf", []) if "$ref" in part), "#/x/x/none"
    )
    enum = code.get("enum") or schema["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {}).get(
        "enum"
    )
    assert enum, "ApiError.code must be an enum"
    raised = _raised_codes()
    assert len(raised) > 20
    assert raised - set(enum) == set()


@pytest.mark.django_db(transaction=True)
def test_a_client_generated_from_the_schema_reads_the_api(schema, tmp_path, live_server):
    from accounts.api_keys import api_key_create
    from tests.factories import CustomerFactory

    schema_file = tmp_path / "schema.yaml"
    schema_file.write_text(yaml.safe_dump(schema))
    generator = Path(sys.executable).with_name("openapi-python-client")
    subprocess.run(
        [
            str(generator),
            "generate",
            "--path",
            str(schema_file),
            "--output-path",
            str(tmp_path / "flowbill_client"),
            "--meta",
            "none",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    sys.path.insert(0, str(tmp_path))
    try:
        client_mod = importlib.import_module("flowbill_client")
        me = importlib.import_module("flowbill_client.api.customer.me_retrieve")
        customer = CustomerFactory(name="Generated Client Co")
        _, raw_key = api_key_create(reseller=customer.reseller, customer=customer, name="generated")
        client = client_mod.AuthenticatedClient(
            base_url=live_server.url, token=raw_key, prefix="Api-Key"
        )
        result = me.sync(client=client)
        assert result.name == "Generated Client Co"
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("flowbill_client")]:
            del sys.modules[name]
