"""One way to send an upstream request: budget, timeouts, retries, typed errors, no secrets.

Every attempt first takes a token from the shared `RequestBudget`, then sends with explicit
httpx timeouts. Connection errors, timeouts, HTTP 5xx, HTTP 429, bodies that are not JSON at
all (a proxy's HTML error page, a body cut short) and the provider's own rate-limit and
service-error codes are retried with exponential backoff and full jitter
(AWS: sleep = uniform(0, min(cap, base * 2**attempt))); a Retry-After header (seconds or
HTTP-date) wins over the backoff, and IPFoxy's 50000 without one waits for the next minute
boundary. Authentication and parameter errors are never retried.

Writes (`post_form`) take the budget with priority (`ratelimit.py`: sync leaves them a share
of every window) and are retried the same way, always with the same body, so an idempotency
key in it is never replaced. An attempt that may have been applied (sent, then a timeout, a
lost connection, a 5xx, an unreadable answer, a transient code) marks the call uncertain:
if no later attempt succeeds or is refused definitively (`UpstreamError.definitive`), the
call raises `OutcomeUnknownError` instead of the last error. A request that never left
(connection refused, connect or pool timeout) is not uncertain.

Headers handed to `get_json`/`post_form` are treated as secrets: they are never logged, never
put in an error, and their values are scrubbed from any upstream text we do quote; so are the
form fields named in `secret_fields`, and no form field goes into an error's context.

Credentials go only where the base-URL policy allows (`accounts.upstream_urls`): before any
request the URL is checked again (http(s), no user info, and, given `allowed_hosts`, a host on
the provider's allowlist), so a stored row that predates the rule cannot send them elsewhere;
redirects are never followed. Connection errors and timeouts are reported without host, port,
errno or address ("upstream unreachable"), so a sync error cannot map an internal network.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import random
import re
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpcore
import httpx
from httpx._transports.default import map_httpcore_exceptions

from accounts.upstream_urls import base_url_problem
from usage.providers.base import (
    AuthError,
    BadResponseError,
    BudgetExhaustedError,
    OutcomeUnknownError,
    RateLimitedError,
    TransientError,
    UnreadableResponseError,
    UpstreamError,
    UrlNotAllowedError,
)
from usage.providers.ratelimit import RequestBudget

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=10.0)
MAX_BODY_BYTES = 20 * 1024 * 1024

# `check(payload, context)` turns a decoded JSON body into its `data`, or raises.
BodyCheck = Callable[[Any, dict[str, Any]], Any]
# httpx errors raised before any byte of the request left: a write cannot have been applied.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    params: dict[str, Any] | None
    form: tuple[str, dict[str, str]] | None  # (encoding, fields)
    headers: dict[str, str]
    priority: bool


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one logical request tries. `max_attempts` counts the first attempt."""

    max_attempts: int = 4
    base_delay: float = 0.5  # seconds; doubles per retry, full jitter
    max_delay: float = 30.0  # cap of one backoff sleep
    max_retry_after: float = 120.0  # we never sleep longer than this on a server's say-so
    budget_timeout: float = 120.0  # how long to wait for a request-budget token


def parse_retry_after(value: str | None, *, now: dt.datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(min(int(value[:9]), 10**8))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max((when - now).total_seconds(), 0.0)


def seconds_to_next_minute(now: dt.datetime) -> float:
    """Seconds from `now` until the next whole minute (never 0: at :00 exactly, 60)."""
    into = now.second + now.microsecond / 1_000_000
    return 60.0 - into


def decode_json(body: bytes, context: dict[str, Any]) -> Any:
    """Decode a JSON body with every fraction as Decimal (no float ever appears)."""
    if len(body) > MAX_BODY_BYTES:
        raise BadResponseError("response body too large", context=context)
    try:
        return _DECODER.decode(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        looks_html = body.lstrip()[:15].lower().startswith((b"<!doctype", b"<html", b"<"))
        what = "HTML" if looks_html else "non-JSON"
        raise UnreadableResponseError(
            f"upstream sent {what} instead of JSON", context=context
        ) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"JSON constant {name} is not allowed")


#: One decoder for every body (`json.loads` with these options builds a new one per call).
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)


class Transport:
    """Sends GETs for one provider under one budget key and counts the attempts it made."""

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        client: httpx.Client,
        budget: RequestBudget,
        budget_key: str,
        per_minute: int,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout | None = None,
        auth_message: str = "upstream refused the credentials",
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], dt.datetime] | None = None,
        rng: random.Random | None = None,
        allowed_hosts: Collection[str] | None = None,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.budget = budget
        self.budget_key = budget_key
        self.per_minute = per_minute
        self.retry = retry or RetryPolicy()
        self.timeout = timeout or DEFAULT_TIMEOUT
        self.auth_message = auth_message
        self.sleep = sleep
        self.wall_clock = wall_clock or (lambda: dt.datetime.now(dt.UTC))
        self.rng = rng or random.Random()  # jitter, not cryptography
        self.requests = 0  # attempts actually sent, across calls
        #: None: only the scheme and user-info rules (unit tests against fakes); production
        #: passes the provider's configured allowlist.
        self.allowed_hosts = allowed_hosts
        self._allowed_urls: set[str] = set()

    # ------------------------------------------------------------------ public

    def get_json(
        self,
        path: str,
        *,
        params: Mapping[str, Any],
        headers: Mapping[str, str],
        check: BodyCheck,
        context: Mapping[str, Any] | None = None,
        priority: bool = False,
    ) -> Any:
        """GET `path` and return `check(body)`; retries what is retryable, raises typed errors.

        `params` must be safe to show (they go into error context and logs); `headers` are
        secret. `context` adds safe facts (account, page, window) to every error. `priority`
        takes the budget ahead of bulk reads (a read on a customer's critical path).
        """
        base_ctx = {"provider": self.provider, "path": path, **dict(context or {})}
        base_ctx.update({k: v for k, v in params.items() if k not in base_ctx})
        request = _Request("GET", path, dict(params), None, dict(headers), priority)
        return self._call(request, check, base_ctx, secrets=[v for v in headers.values() if v])

    def post_form(
        self,
        path: str,
        *,
        form: Mapping[str, str],
        headers: Mapping[str, str],
        check: BodyCheck,
        context: Mapping[str, Any] | None = None,
        secret_fields: Collection[str] = (),
        encoding: str = "multipart",
    ) -> Any:
        """POST `form` (a write) and return `check(body)`, with budget priority.

        Retried like `get_json`, resending the identical form (its idempotency key included);
        raises `OutcomeUnknownError` when an attempt may have been applied and none settled it.
        Form fields never go into errors: `context` says what is safe to show. `encoding` is
        "multipart" (form-data, as IPFoxy documents) or "urlencoded".
        """
        if encoding not in ("multipart", "urlencoded"):
            raise ValueError("encoding must be 'multipart' or 'urlencoded'")
        secrets = [v for v in headers.values() if v] + [
            form[name] for name in secret_fields if form.get(name)
        ]
        base_ctx = {"provider": self.provider, "path": path, **dict(context or {})}
        request = _Request("POST", path, None, (encoding, dict(form)), dict(headers), True)
        return self._call(request, check, base_ctx, secrets=secrets)

    # ------------------------------------------------------------------ internals

    def _call(
        self, request: _Request, check: BodyCheck, base_ctx: dict[str, Any], secrets: list[str]
    ) -> Any:
        write = request.method != "GET"
        attempt, uncertain = 0, False
        while True:
            attempt += 1
            ctx = {**base_ctx, "attempt": attempt}
            try:
                return self._attempt(request, check, ctx)
            except UpstreamError as exc:
                scrub_secrets(exc, secrets)
                uncertain = uncertain or (write and exc.may_have_applied)
                final = isinstance(exc, BudgetExhaustedError)  # it already waited its fill
                if final or not exc.retryable or attempt >= self.retry.max_attempts:
                    logger.warning(
                        "upstream request failed: %s", exc, extra={"error_code": exc.code}
                    )
                    if uncertain and not exc.definitive:
                        raise OutcomeUnknownError(
                            f"outcome unknown after {attempt} attempt(s): {exc.message}",
                            cause=exc,
                            context={**ctx, "last_error": exc.code},
                        ) from exc
                    raise
                delay = self._delay(exc, attempt)
                logger.info("upstream retry in %.2fs after: %s", delay, exc)
                self.sleep(delay)

    def _send(self, request: _Request, url: str) -> httpx.Response | _PooledResponse:
        options: dict[str, Any] = {
            "headers": request.headers,
            "timeout": self.timeout,
            "follow_redirects": False,  # a redirect must not carry the credentials elsewhere
        }
        if request.form is None:
            query = None if "?" in url else _plain_query(request.params)
            if query is not None:  # the same URL httpx would build, parsed once, not twice
                direct = _pooled_get(
                    self.client, url, query, request.headers, self.timeout.as_dict()
                )
                if direct is not None:
                    return direct
                return self.client.get(f"{url}?{query}", **options)
            return self.client.get(url, params=request.params, **options)
        encoding, fields = request.form
        if encoding == "multipart":  # (None, value): a plain field, not a file
            options["files"] = {name: (None, value) for name, value in fields.items()}
        else:
            options["data"] = fields
        return self.client.post(url, **options)

    def _attempt(self, request: _Request, check: BodyCheck, ctx: dict[str, Any]) -> Any:
        url = self.base_url + request.path
        self._check_url(url)
        self.budget.acquire(
            self.budget_key,
            per_minute=self.per_minute,
            timeout=self.retry.budget_timeout,
            priority=request.priority,
        )
        self.requests += 1
        try:
            response = self._send(request, url)
        except httpx.TimeoutException as exc:
            error = TransientError(
                f"upstream unreachable: timeout ({type(exc).__name__})", context=ctx
            )
            error.may_have_applied = not isinstance(exc, NOT_SENT)
            raise error from None
        except httpx.TransportError as exc:
            # The exception text names hosts, ports, errnos and resolver output: never kept.
            error = TransientError(
                f"upstream unreachable: connection error ({type(exc).__name__})", context=ctx
            )
            error.may_have_applied = not isinstance(exc, NOT_SENT)
            raise error from None
        status = response.status_code
        ctx["http_status"] = status
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now=self.wall_clock())
        if status in (401, 403):
            raise AuthError(self.auth_message, context=ctx)
        if status == 429:
            raise RateLimitedError(
                "HTTP 429 too many requests", retry_after=retry_after, context=ctx
            )
        if status >= 500:
            exc = TransientError(f"HTTP {status} from upstream", context=ctx)
            exc.retry_after = retry_after
            raise exc
        if 300 <= status < 400:
            raise BadResponseError(
                f"upstream redirected (HTTP {status}); redirects are not followed", context=ctx
            )
        if not 200 <= status < 300:
            raise BadResponseError(f"unexpected HTTP status {status}", context=ctx)
        payload = decode_json(response.content, ctx)
        try:
            return check(payload, ctx)
        except UpstreamError as exc:  # a Retry-After header also counts for body codes
            if exc.retry_after is None:
                exc.retry_after = retry_after
            raise

    def _check_url(self, url: str) -> None:
        if url in self._allowed_urls:  # this transport's hosts allowed it before
            return
        problem = base_url_problem(url, allowed_hosts=self.allowed_hosts)
        if problem is not None:
            raise UrlNotAllowedError(
                f"base URL refused, nothing sent: {problem}", context={"provider": self.provider}
            )
        self._allowed_urls.add(url)

    def _delay(self, exc: UpstreamError, attempt: int) -> float:
        cap = self.retry.max_retry_after
        if exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), cap)
        if isinstance(exc, RateLimitedError) and exc.wait_for_next_minute:
            return min(seconds_to_next_minute(self.wall_clock()), cap)
        ceiling = min(self.retry.max_delay, self.retry.base_delay * 2 ** (attempt - 1))
        return self.rng.uniform(0.0, ceiling)


class _RawHeaders:
    """The headers of a response read straight from the pool: `get` as `httpx.Headers` has
    (case-insensitive, the first value), without building one per response."""

    __slots__ = ("raw",)

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.raw = raw

    def get(self, name: str, default: str | None = None) -> str | None:
        key = name.lower().encode("ascii")
        for field, value in self.raw:
            if field.lower() == key:
                return value.decode("latin-1")
        return default


@dataclass(frozen=True)
class _PooledResponse:
    """What `Transport._attempt` reads of a response (`httpx.Response` has the same)."""

    status_code: int
    headers: _RawHeaders
    content: bytes


def _pooled_get(
    client: httpx.Client, url: str, query: str, headers: Mapping[str, str], timeout: dict
) -> _PooledResponse | httpx.Response | None:
    """GET `url?query` straight from `client`'s connection pool (httpcore), or None when
    `client` has anything `Client.send` would add: event hooks, auth, cookies, a base URL or
    default params, mounted transports (a proxy from the environment), a transport of
    another kind, a subclass.

    The request is the one `client.get` sends (a Host header, the client's default headers,
    then `headers`; the timeout `timeout`; no redirect followed), built without the work
    the httpx layers repeat for every request (parsing the URL character by character,
    merging it with the client's, the auth and redirect generators, the response model):
    about a third of an IPFoxy sync's CPU (`bench/sync.py`). The URL's parts and the header
    list are computed once per URL and header set. A compressed answer is decoded as httpx
    decodes it; errors are httpx's own (`httpx.TransportError` subclasses)."""
    if (
        type(client) is not httpx.Client
        or client.is_closed
        or client._mounts
        or type(client._transport) is not httpx.HTTPTransport
        or client.auth is not None
        or client.event_hooks["request"]
        or client.event_hooks["response"]
        or client.cookies
        or client.params
        or client.base_url.host
    ):
        return None
    key = (id(client), url, tuple(headers.items()))
    prepared = _prepared.get(key)
    if prepared is None or prepared[0] is not client:
        prepared = _prepared[key] = _prepare(client, url, headers)
    _, scheme, host, port, path, raw_headers = prepared
    target = path + b"?" + query.encode("ascii")
    sent = httpcore.Request(
        b"GET",
        httpcore.URL(scheme=scheme, host=host, port=port, target=target),
        headers=raw_headers,
        extensions={"timeout": timeout},
    )
    with map_httpcore_exceptions():
        response = client._transport._pool.handle_request(sent)
        try:
            content = response.read()
        finally:
            response.close()
    for field, value in response.headers:
        if field.lower() == b"content-encoding" and value.strip().lower() != b"identity":
            return httpx.Response(response.status, headers=response.headers, content=content)
    return _PooledResponse(response.status, _RawHeaders(response.headers), content)


#: (client id, url, headers) -> (client, scheme, host, port, path, request headers)
_prepared: dict[tuple, tuple] = {}


def _prepare(client: httpx.Client, url: str, headers: Mapping[str, str]) -> tuple:
    parsed = httpx.URL(url)
    merged = client.headers.copy()
    merged.update(headers)
    raw_headers = [(b"Host", parsed.netloc), *merged.raw]
    if len(_prepared) >= 1000:  # clients and connectors come and go with threads
        _prepared.clear()
    return client, parsed.raw_scheme, parsed.raw_host, parsed.port, parsed.raw_path, raw_headers


def _plain_query(params: Mapping[str, Any] | None) -> str | None:
    """`params` (text and integers only) encoded as httpx encodes them, else None. Names and
    values of unreserved characters only (ids, numbers: every upstream read) are joined as
    they are, which is what `urlencode` makes of them, without its per-character quoting."""
    if not params or not all(type(value) is str or type(value) is int for value in params.values()):
        return None
    pairs = [f"{name}={value}" for name, value in params.items()]
    if all(_UNRESERVED.fullmatch(pair) for pair in pairs):
        return "&".join(pairs)
    return urlencode(params)


#: A name=value pair of characters `urlencode` leaves as they are (RFC 3986 unreserved).
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*=[A-Za-z0-9_.~-]*")


@contextmanager
def secrets_scrubbed(secrets: Iterable[str]) -> Iterator[None]:
    """Scrub credentials from any UpstreamError leaving the block (parsers quote upstream
    values in their messages, and a hostile upstream could echo a token there)."""
    try:
        yield
    except UpstreamError as exc:
        scrub_secrets(exc, list(secrets))
        raise


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
        # A bearer value is also scrubbed without its scheme.
        if " " in secret:
            text = text.replace(secret.split(" ", 1)[1], "***")
    return text


def scrub_secrets(exc: UpstreamError, secrets: Iterable[str]) -> None:
    """Remove any echoed credential from an error's message and context, in place."""
    secrets = [s for s in secrets if s]
    if not secrets:
        return
    exc.message = _redact(exc.message, secrets)
    exc.args = (exc.message,)
    for k, v in list(exc.context.items()):
        if isinstance(v, str):
            exc.context[k] = _redact(v, secrets)
