"""Routing: the upstream endpoints with transport faults around them, and the `/_sim/`
control endpoints (no authentication: the simulator binds to 127.0.0.1 by default)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from usage.simulator import bytesflows, ipfoxy, ipfoxy_reseller, traffic
from usage.simulator.clock import to_epoch
from usage.simulator.config import DEFAULT_API_ID, SimulatorConfig
from usage.simulator.faults import (
    ALLOCATE_FLOW,
    ASSET,
    CREATE_SUB_ACCOUNT,
    FLOW_LIST,
    IPFOXY,
    IPFOXY_WRITES,
    RECORDS,
    RESIDENTIAL_DATA,
    SUB_ACCOUNT_FLOW,
    SUB_ACCOUNTS,
    UPDATE_PASS,
    UPDATE_WHITELIST,
)
from usage.simulator.state import Request, Response, SimState

IPFOXY_API = "/ip/open-api/"
# path -> (endpoint key, method)
ROUTES = {
    IPFOXY_API + "get-account-use-flow-list": (FLOW_LIST, "GET"),
    IPFOXY_API + "get-sub-account-list": (SUB_ACCOUNTS, "GET"),
    IPFOXY_API + "get-sub-account-flow": (SUB_ACCOUNT_FLOW, "GET"),
    IPFOXY_API + "residential-data": (RESIDENTIAL_DATA, "GET"),
    IPFOXY_API + "create-sub-account": (CREATE_SUB_ACCOUNT, "POST"),
    IPFOXY_API + "allocate-flow-sub-account": (ALLOCATE_FLOW, "POST"),
    IPFOXY_API + "update-pass": (UPDATE_PASS, "POST"),
    IPFOXY_API + "update-ip-whitelist": (UPDATE_WHITELIST, "POST"),
    "/api/v1/dashboard/asset": (ASSET, "GET"),
    "/api/v1/user/traffic/records": (RECORDS, "GET"),
}

HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>Service temporarily unavailable</h1><p>cloudflare</p></body></html>"
)


def _json(payload: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(payload, separators=(",", ":")).encode(), outcome="control")


class ControlError(ValueError):
    pass


class SimulatorApp:
    """Turns a parsed `Request` into a `Response`; the server only moves bytes."""

    def __init__(self, config: SimulatorConfig):
        self.state = SimState(config)
        self._control: dict[tuple[str, str], Callable[[dict[str, Any]], Any]] = {
            ("GET", "/_sim/health"): lambda _: {"ok": True},
            ("GET", "/_sim/stats"): lambda _: self.stats(),
            ("POST", "/_sim/stats/reset"): lambda _: self.reset_stats(),
            ("GET", "/_sim/faults"): lambda _: self.state.faults.settings().as_dict(),
            ("POST", "/_sim/faults"): lambda body: self.set_faults(body).as_dict(),
            ("POST", "/_sim/faults/reset"): lambda _: self.set_faults({"reset": True}).as_dict(),
            ("GET", "/_sim/clock"): lambda _: self.state.clock.describe(),
            ("POST", "/_sim/clock"): self.set_clock,
            ("GET", "/_sim/rate-limit"): lambda _: self._rate_limit({}),
            ("POST", "/_sim/rate-limit"): self._rate_limit,
            ("GET", "/_sim/revisions"): lambda _: {"revisions": self.state.revisions()},
            ("POST", "/_sim/revisions"): self._revise,
            ("POST", "/_sim/revisions/clear"): lambda _: self._clear_revisions(),
            ("POST", "/_sim/tokens"): self._add_token,
            ("POST", "/_sim/tokens/expire"): self._expire_token,
            ("POST", "/_sim/tokens/restore"): self._restore_token,
            ("GET", "/_sim/config"): lambda _: self.describe(),
            ("GET", "/_sim/reseller"): lambda _: self.state.book.describe(self._now()),
            ("POST", "/_sim/reseller/pool"): self._set_pool,
            ("POST", "/_sim/reseller/status"): self._set_status,
            ("POST", "/_sim/reseller/login"): self._client_login,
        }

    # ------------------------------------------------------------------ dispatch

    def handle(self, request: Request) -> Response:
        if request.path.startswith("/_sim/"):
            return self._handle_control(request)
        route = ROUTES.get(request.path)
        if route is None:
            return _json({"code": 404, "msg": "not found", "data": None}, 404)
        endpoint, method = route
        if request.method != method:
            return _json({"code": 405, "msg": "method not allowed", "data": None}, 405)
        response = self._handle_api(request, endpoint)
        self.state.stats.record_outcome(response.outcome)
        return response

    def _handle_api(self, request: Request, endpoint: str) -> Response:
        state, faults = self.state, self.state.faults
        if endpoint in IPFOXY:
            params = request.form if request.method == "POST" else request.query
            account = None if endpoint == SUB_ACCOUNTS else params.get("account") or None
            credential = "ipfoxy:" + (request.headers.get("api-id") or "<none>")
        else:
            account = bytesflows.resolve_account(state, request)
            credential = "bytesflows:" + (account or "<unauthorized>")
        state.stats.record_request(endpoint, credential, state.clock.now())
        delay = faults.latency_seconds

        def fault(kind: str) -> bool:
            return faults.fires(kind, endpoint=endpoint, account=account)

        if fault("disconnect"):
            return Response(0, b"", delay=delay, disconnect=True, outcome="fault_disconnect")
        if fault("slow"):
            delay += faults.settings().slow_seconds
        if fault("http_5xx"):
            status = faults.settings().http_5xx_status
            body = f"{status} upstream error".encode()
            return Response(status, body, "text/plain", delay=delay, outcome="fault_http_5xx")
        if fault("http_429"):
            retry_after = faults.settings().retry_after
            headers = (("Retry-After", str(retry_after)),) if retry_after is not None else ()
            return Response(
                429, b"Too Many Requests", "text/plain", headers, delay, outcome="fault_http_429"
            )
        if fault("html"):
            return Response(
                200, HTML_PAGE, "text/html; charset=utf-8", delay=delay, outcome="fault_html"
            )

        if endpoint == FLOW_LIST:
            response = ipfoxy.flow_list(state, request)
        elif endpoint == SUB_ACCOUNTS:
            response = ipfoxy.sub_account_list(state, request)
        elif endpoint in ipfoxy_reseller.HANDLERS:
            response = ipfoxy_reseller.handle(state, request, endpoint)
        elif endpoint == ASSET:
            response = bytesflows.asset(state, request, account)
        else:
            response = bytesflows.records(state, request, account)

        if endpoint in IPFOXY_WRITES and response.outcome == "ok" and fault("timeout_after_apply"):
            # Applied; the answer never comes (a client with a shorter timeout gives up first).
            stall = delay + faults.settings().slow_seconds
            return Response(
                0, b"", delay=stall, disconnect=True, outcome="fault_timeout_after_apply"
            )
        if response.status == 200 and fault("malformed_json"):
            response.body = response.body[: max(1, len(response.body) // 2)]
            response.outcome = "fault_malformed_json"
        response.delay += delay
        return response

    def _handle_control(self, request: Request) -> Response:
        handler = self._control.get((request.method, request.path))
        if handler is None:
            return _json({"error": f"no control endpoint {request.method} {request.path}"}, 404)
        try:
            body = json.loads(request.body or b"{}")
            if not isinstance(body, dict):
                raise ControlError("the body must be a JSON object")
            return _json(handler(body))
        except (ValueError, TypeError, KeyError) as exc:
            return _json({"error": str(exc)}, 400)

    # ------------------------------------------------------------------ control operations

    def stats(self) -> dict[str, Any]:
        return self.state.stats.snapshot(faults_injected=dict(self.state.faults.injected))

    def reset_stats(self) -> dict[str, Any]:
        self.state.stats.reset()
        self.state.faults.injected.clear()
        return self.stats()

    def set_faults(self, changes: dict[str, Any]):
        return self.state.faults.update(changes)

    def set_clock(self, body: dict[str, Any]) -> dict[str, object]:
        clock = self.state.clock
        if body.get("real"):
            clock.set_real()
        if body.get("now") is not None:
            clock.set_fixed(to_epoch(body["now"]))
        if body.get("offset_seconds") is not None:
            clock.set_offset(float(body["offset_seconds"]))
        if body.get("advance_seconds") is not None:
            clock.advance(float(body["advance_seconds"]))
        return clock.describe()

    def _rate_limit(self, body: dict[str, Any]) -> dict[str, Any]:
        limiter = self.state.limiter
        if body:
            limiter.configure(enabled=body.get("enabled"), per_minute=body.get("per_minute"))
        return {"enabled": limiter.enabled, "per_minute": limiter.per_minute}

    def _revise(self, body: dict[str, Any]) -> dict[str, Any]:
        hour = body["hour"]
        hour_epoch = int(to_epoch(hour))
        self.state.revise(str(body["account"]), hour_epoch, str(body["flow"]))
        return {"revisions": self.state.revisions()}

    def _clear_revisions(self) -> dict[str, Any]:
        self.state.clear_revisions()
        return {"revisions": []}

    def _add_token(self, body: dict[str, Any]) -> dict[str, Any]:
        self.state.add_token(str(body["token"]), str(body["account"]))
        return {"ok": True}

    def _expire_token(self, body: dict[str, Any]) -> dict[str, Any]:
        self.state.expire_token(str(body["token"]))
        return {"ok": True}

    def _restore_token(self, body: dict[str, Any]) -> dict[str, Any]:
        self.state.restore_token(str(body["token"]))
        return {"ok": True}

    def _now(self) -> int:
        return int(self.state.clock.now())

    def _set_pool(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.state.book.set_pool(
            str(body.get("api_id") or DEFAULT_API_ID),
            total_mb=body.get("total_mb"),
            add_mb=body.get("add_mb"),
        )

    def _set_status(self, body: dict[str, Any]) -> dict[str, Any]:
        self.state.book.set_status(str(body["account"]), int(body["status"]), self._now())
        return {"ok": True}

    def _client_login(self, body: dict[str, Any]) -> dict[str, Any]:
        self.state.book.client_login(str(body["account"]), str(body["password"]), self._now())
        return {"ok": True}

    def describe(self) -> dict[str, Any]:
        """The public facts of this simulator (api-ids, not their tokens)."""
        config = self.state.config
        return {
            "seed": self.state.seed,
            "ipfoxy_api_ids": sorted(self.state.ipfoxy_keys),
            "ipfoxy_main_account": config.ipfoxy_main_account,
            "ipfoxy_sub_accounts": len(self.state.sub_accounts),
            "ipfoxy_pool_mb": config.ipfoxy_pool_mb,
            "ipfoxy_password_gates_traffic": config.ipfoxy_password_gates_traffic,
            "bytesflows_token_prefix": config.bytesflows_token_prefix,
            "anchor_day": traffic.local_label(self.state.anchor_epoch),
            "clock": self.state.clock.describe(),
            "rate_limit": self._rate_limit({}),
        }
