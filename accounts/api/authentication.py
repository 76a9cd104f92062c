"""`Authorization: Api-Key <key>` authentication, and its OpenAPI security scheme.

A valid key authenticates as an `ApiKeyPrincipal` (`request.user`) with the `ApiKey` row as
`request.auth`; the reseller and customer come from the key. A header that names the
`Api-Key` scheme but carries an unknown, malformed or revoked key is a 401 (never a fall
through to anonymous), and counts against the caller's IP: past the failure rate, key
attempts from that IP answer 429 whatever the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from accounts.api.throttling import AuthFailureThrottle

if TYPE_CHECKING:
    from accounts.models import ApiKey

KEYWORD = "Api-Key"


@dataclass(frozen=True, eq=False)
class ApiKeyPrincipal:
    """The `request.user` of a key-authenticated request: not a login, just the key's owner."""

    api_key: ApiKey

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    reseller = None  # not reseller staff: the API resolves tenancy from the key itself

    @property
    def pk(self) -> str:
        return f"api-key-{self.api_key.pk}"

    def __str__(self) -> str:
        return f"API key {self.api_key.prefix}"


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != KEYWORD.lower().encode():
            return None
        failures = AuthFailureThrottle()
        wait = failures.blocked_for(request)
        if wait is not None:
            raise exceptions.Throttled(wait=wait)
        if len(header) != 2:
            failures.record_failure(request)
            raise exceptions.AuthenticationFailed(
                "Send the header as `Authorization: Api-Key <key>`.", code="invalid_api_key"
            )
        try:
            raw_key = header[1].decode("ascii")
        except UnicodeDecodeError:
            raw_key = ""
        # Imported here: DRF loads this class while `config.errors` (which the services use)
        # is still importing `rest_framework.views`.
        from accounts.api_keys import api_key_authenticate

        api_key = api_key_authenticate(raw_key=raw_key, now=timezone.now()) if raw_key else None
        if api_key is None:
            failures.record_failure(request)
            raise exceptions.AuthenticationFailed(
                "Unknown or revoked API key.", code="invalid_api_key"
            )
        return ApiKeyPrincipal(api_key=api_key), api_key

    def authenticate_header(self, request) -> str:
        return KEYWORD


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`, e.g. `Api-Key fb_ab12cd34_...`. "
            "Reseller keys use `/api/v1/reseller/`; customer keys the other endpoints.",
        }
