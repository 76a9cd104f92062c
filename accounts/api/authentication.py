"""`Authorization: Api-Key <key>` authentication, and its OpenAPI security scheme.

A valid key authenticates as an `ApiKeyPrincipal` (`request.user`) with the `ApiKey` row as
`request.auth`; the reseller and customer come from the key. An Authorization header with
another scheme (`Bearer`, `Token`, ...) or an unknown, malformed or revoked key is a 401
(never a fall through to anonymous) that counts against the caller's IP: past the failure
rate, failed attempts from that IP answer 429. The key is checked before that throttle, so
a valid key is never refused because of other clients' failures behind the same address.
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
WRONG_SCHEME_HINT = 'use "Authorization: Api-Key <key>"'


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
        if not header:
            return None  # no Authorization header: a session, or anonymous
        if header[0].lower() != KEYWORD.lower().encode():
            _refuse(request, f"Unsupported authorization scheme: {WRONG_SCHEME_HINT}.")
        if len(header) != 2:
            _refuse(request, f"Malformed authorization header: {WRONG_SCHEME_HINT}.")
        try:
            raw_key = header[1].decode("ascii")
        except UnicodeDecodeError:
            raw_key = ""
        # Imported here: DRF loads this class while `core.errors` (which the services use)
        # is still importing `rest_framework.views`.
        from accounts.api_keys import api_key_authenticate

        # The key is checked first: a valid key is never refused because others failed
        # from the same address (a shared proxy or office NAT).
        api_key = api_key_authenticate(raw_key=raw_key, now=timezone.now()) if raw_key else None
        if api_key is None:
            _refuse(request, "Unknown or revoked API key.")
        return ApiKeyPrincipal(api_key=api_key), api_key

    def authenticate_header(self, request) -> str:
        return KEYWORD


def _refuse(request, message: str):
    """A failed attempt: 401, or 429 once this address has used up its failures."""
    failures = AuthFailureThrottle()
    wait = failures.blocked_for(request)
    if wait is not None:
        raise exceptions.Throttled(wait=wait)
    failures.record_failure(request)
    raise exceptions.AuthenticationFailed(message, code="invalid_api_key")


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
