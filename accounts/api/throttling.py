"""Rate limits: per API key (or session user), and per client IP for failed key attempts.

Rates live in `REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]` under `api_key` and
`api_auth_failure`, and are read at request time (DRF's own throttles read them once at
import, which makes them impossible to change in tests). Counters sit in the default cache:
with several server processes it must be a shared cache (Redis), or each process counts
alone.
"""

from __future__ import annotations

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class _LiveRateThrottle(SimpleRateThrottle):
    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class ApiKeyRateThrottle(_LiveRateThrottle):
    """Requests per key; a browser session counts per user, anything else per IP."""

    scope = "api_key"

    def get_cache_key(self, request, view) -> str:
        from accounts.models import ApiKey  # DRF imports throttles while settings load

        if isinstance(request.auth, ApiKey):
            ident = f"key-{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = f"ip-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class AuthFailureThrottle(_LiveRateThrottle):
    """Failed API-key attempts per client IP: past the rate, further failures get 429.

    Only failures are recorded (`record_failure`) and only failures consult it (the key is
    checked first), so a valid key is never slowed down by this, even from an address where
    others keep failing; a client guessing keys is, whatever keys it tries.
    """

    scope = "api_auth_failure"

    def get_cache_key(self, request, view=None) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def _load(self, request) -> bool:
        if self.rate is None:
            return False
        self.key = self.get_cache_key(request)
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        return True

    def blocked_for(self, request) -> float | None:
        """Seconds to wait if this IP has used up its failures, else None."""
        if not self._load(request) or len(self.history) < self.num_requests:
            return None
        return self.wait()

    def record_failure(self, request) -> None:
        if self._load(request):
            self.history.insert(0, self.now)
            self.cache.set(self.key, self.history, self.duration)
