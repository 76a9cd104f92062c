"""The API's AutoSchema: documents the error responses every endpoint can give.

Each operation under `/api/v1/` gets the one error shape (`ApiError`) for 401 (no or bad
key), 403 (wrong kind of key), 429 (throttled), 404 where the path names an object, and
400 where a body is parsed, so clients and schema-driven tests know them.

`forbid_unknown_request_fields` (a postprocessing hook) marks every input body component
(`*InputSerializer` -> `*InputRequest`) `additionalProperties: false`, as the API refuses
unknown keys (`StrictInputSerializer`).
"""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse

from core.openapi import ApiErrorSerializer

_ERRORS = {
    "400": "Invalid input: `extra.fields` names each field with its messages.",
    "401": "No API key, or an unknown, malformed or revoked one.",
    "403": "A key of the wrong kind for this endpoint (reseller vs customer).",
    "404": "No such object for this caller (another tenant's objects answer the same).",
    "429": "Too many requests; retry after the `Retry-After` header's seconds.",
}


class FlowbillAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response" or not self.path.startswith("/api/v1/"):
            return responses
        codes = ["401", "403", "429"]
        if self.method in ("POST", "PUT", "PATCH"):
            codes.append("400")
        if "{" in self.path:
            codes.append("404")
        for code in sorted(codes):
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ApiErrorSerializer, description=_ERRORS[code]), code
                )
        if "429" in responses:
            responses["429"].setdefault("headers", {})["Retry-After"] = {
                "schema": {"type": "integer"},
                "description": "Seconds to wait before retrying.",
            }
        return responses


def forbid_unknown_request_fields(result, generator, request, public):
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("InputRequest") and component.get("type") == "object":
            component["additionalProperties"] = False
    return result
