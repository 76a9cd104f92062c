"""OpenAPI: the `Idempotency-Key` header on every POST of `/api/v1/` (a postprocessing
hook, listed in SPECTACULAR_SETTINGS), its 409 answers, and `Idempotent-Replayed`."""

from __future__ import annotations

from idempotency.mixins import HEADER, KEY_PATTERN, REPLAYED_HEADER

_PARAMETER = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": KEY_PATTERN.pattern},
    "description": "Makes the POST safe to retry: the same key with the same body within 24 "
    "hours replays the first response (with `Idempotent-Replayed: true`) instead of running "
    "again; another body is a 409 `idempotency_key_reused`, and a retry while the first is "
    "still running a 409 `idempotency_request_in_progress`. 1-255 visible ASCII characters.",
}
_CONFLICT_DESCRIPTION = (
    "`idempotency_key_reused` or `idempotency_request_in_progress` (the Idempotency-Key "
    "header), or the object's state does not allow the action."
)
_REPLAYED = {
    "schema": {"type": "string", "enum": ["true"]},
    "description": "Present on a response replayed for a repeated Idempotency-Key.",
}


def add_idempotency_key_header(result, generator, request, public):
    for path, operations in result.get("paths", {}).items():
        operation = operations.get("post")
        if not path.startswith("/api/v1/") or operation is None:
            continue
        parameters = operation.setdefault("parameters", [])
        if not any(p.get("in") == "header" and p.get("name") == HEADER for p in parameters):
            parameters.append(dict(_PARAMETER))
        responses = operation.setdefault("responses", {})
        if "409" not in responses:
            responses["409"] = {
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}
                },
                "description": _CONFLICT_DESCRIPTION,
            }
        for code, response in responses.items():
            if code.startswith("2") or code.startswith("4"):
                response.setdefault("headers", {})[REPLAYED_HEADER] = dict(_REPLAYED)
    return result
