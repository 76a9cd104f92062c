"""Check real API responses against the generated OpenAPI schema (status code and body).

A small, dependency-free cousin of schemathesis' response checks, for tests that drive the
API with realistic data: OpenAPI 3.0 `nullable` is translated to JSON Schema, and `$ref`s
resolve inside the schema's own `components`.
"""

import re
from functools import cache
from io import StringIO

import yaml
from django.core.management import call_command
from jsonschema import Draft202012Validator


def json_schema(node):
    """OpenAPI 3.0 schema -> JSON Schema (`nullable` becomes a null type)."""
    if isinstance(node, list):
        return [json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: json_schema(value) for key, value in node.items()}
    if node.pop("nullable", False):
        if "type" in node:
            node["type"] = [node["type"], "null"]
            if "enum" in node:
                node["enum"] = [*node["enum"], None]
        else:
            node = {"anyOf": [node, {"type": "null"}]}
    return node


@cache
def openapi() -> dict:
    out = StringIO()
    call_command("spectacular", stdout=out)
    return yaml.safe_load(out.getvalue())


@cache
def _operations():
    doc = openapi()
    table = []
    for template, item in doc["paths"].items():
        pattern = re.compile("^" + re.sub(r"\{[^}]+\}", r"[^/]+", template) + "$")
        for method, operation in item.items():
            table.append((pattern, method, operation))
    return table, json_schema(doc["components"])


def assert_matches_schema(response) -> None:
    """The response's status is documented for its operation and its body fits the schema."""
    request = response.wsgi_request
    path, method = request.path, request.method.lower()
    table, components = _operations()
    operation = next((op for p, m, op in table if m == method and p.match(path)), None)
    assert operation is not None, f"undocumented operation {method.upper()} {path}"
    documented = operation["responses"].get(str(response.status_code))
    assert documented is not None, f"{method.upper()} {path}: undocumented {response.status_code}"
    content = documented.get("content")
    if not content:
        assert not response.content, f"{method.upper()} {path}: body where none is documented"
        return
    media_type = response["Content-Type"].split(";")[0].strip()
    assert media_type in content, f"{method.upper()} {path}: undocumented {media_type}"
    if media_type != "application/json":
        return  # binary bodies (PDF): the documented media type is the contract
    schema = content["application/json"]["schema"]
    validator = Draft202012Validator({**schema, "components": components})
    errors = sorted(validator.iter_errors(response.json()), key=str)
    assert not errors, f"{method.upper()} {path} {response.status_code}: {errors[0].message}"
