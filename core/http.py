"""The guarded outbound HTTP client: the one path for every request to a URL a tenant chose
(webhook endpoints today; anything later).

What it guarantees, whatever the URL says:
- **Addresses checked after resolution.** The host is resolved once, per connection; when
  *any* of its addresses is not globally routable (loopback, private, link-local, CGNAT,
  NAT64, IPv4-mapped or -compatible, 6to4/Teredo, reserved, multicast, unspecified) nothing
  is sent. The connection then goes to the checked address itself, so a second lookup
  (DNS rebinding) cannot swap it for an internal one. TLS still verifies the certificate
  against the host name in the URL. Numeric host forms (`2130706433`, `0x7f.1`, `127.1`)
  are caught because the check runs on what the resolver returned.
- **A total deadline.** The name lookup, connect, TLS, sending and reading the whole answer
  share one clock (`deadline` seconds): every step waits at most the time left, so a
  receiver that drips a byte every few seconds, or a name server that never answers, is cut
  off at the deadline, not after it.
- **A capped body.** At most `max_body` bytes of the answer are read (no decompression:
  `Accept-Encoding: identity`); the rest is never read.
- **No redirects, no proxies from the environment.** A 3xx is an answer like any other.
- **Errors that do not map the network.** Every failure is an `OutboundError` whose
  `reason` is one of `REASONS` (`endpoint address not allowed`, `connection failed`,
  `TLS error`, `timed out`); `detail` carries the library's text for DEBUG logs only.

Modelled on Sentry's `sentry.net.socket` (resolve, check every address, connect to the
checked one), done as an httpcore network backend so httpx keeps its HTTP handling.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

import httpcore
import httpx

ADDRESS_NOT_ALLOWED = "endpoint address not allowed"
CONNECTION_FAILED = "connection failed"
TLS_ERROR = "TLS error"
TIMED_OUT = "timed out"
REASONS = (ADDRESS_NOT_ALLOWED, CONNECTION_FAILED, TLS_ERROR, TIMED_OUT)

#: Seconds for one whole exchange: connect + TLS + send + the answer.
DEFAULT_DEADLINE = 10.0
#: Bytes of the answer read at most (the caller stores what it needs of them).
DEFAULT_MAX_BODY = 1024

Resolver = Callable[[str, int], list[str]]

# IPv6 ranges that embed or translate to an IPv4 address, or are otherwise not a public
# destination, beyond what `ipaddress` calls non-global.
_BLOCKED_V6 = tuple(
    ipaddress.IPv6Network(net)
    for net in (
        "::/96",  # IPv4-compatible (deprecated): ::7f00:1 is 127.0.0.1
        "::ffff:0:0/96",  # IPv4-mapped
        "::ffff:0:0:0/96",  # IPv4-translated
        "64:ff9b::/96",  # NAT64, well-known prefix
        "64:ff9b:1::/48",  # NAT64, local-use
        "2002::/16",  # 6to4
        "2001::/32",  # Teredo
        "100::/64",  # discard-only
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")


class OutboundError(Exception):
    """A request that got no HTTP answer. `reason` is safe to show anyone; `detail` is not."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class AddressNotAllowed(OutboundError):
    def __init__(self, detail: str = "") -> None:
        super().__init__(ADDRESS_NOT_ALLOWED, detail)


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    #: At most the `max_body` first bytes of the answer, as received.
    body: bytes


def address_is_public(address: str) -> bool:
    """True only for a globally routable unicast address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return False
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved or not ip.is_global:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        return not any(ip in net for net in _BLOCKED_V6)
    return ip not in _CGNAT


def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (IPv4 and IPv6), in the resolver's order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise OutboundError(CONNECTION_FAILED, f"name not resolved: {exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


#: Lookups run here so that a caller can stop waiting: `getaddrinfo` has no timeout of its
#: own, and a tenant's slow name server must not hold a worker (or a web request) past its
#: deadline. Bounded: when every thread is stuck, further lookups time out in the queue.
_LOOKUPS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="outbound-dns")


def resolve_within(host: str, port: int, seconds: float, resolver: Resolver | None = None):
    """`resolver(host, port)` (by default `resolve_host`), given at most `seconds`."""
    resolver = resolver or resolve_host
    future = _LOOKUPS.submit(resolver, host, port)
    try:
        return future.result(timeout=max(seconds, 0))
    except FutureTimeout:
        future.cancel()
        raise OutboundError(TIMED_OUT, f"name lookup of {host} took over {seconds:.1f} s") from None


class _Clock:
    def __init__(self, seconds: float) -> None:
        self.ends = time.monotonic() + seconds

    def bound(self, timeout: float | None, error: type[Exception]) -> float:
        left = self.ends - time.monotonic()
        if left <= 0:
            raise error("deadline reached")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """Every read, write and TLS handshake waits at most the time left on the clock."""

    def __init__(self, stream: httpcore.NetworkStream, clock: _Clock) -> None:
        self._stream = stream
        self._clock = clock

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._clock.bound(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._clock.bound(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        timeout = self._clock.bound(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._stream.start_tls(ssl_context, server_hostname, timeout), self._clock
        )

    def get_extra_info(self, info: str) -> object:
        return self._stream.get_extra_info(info)


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolves once, refuses unless every address is public, connects to the checked one."""

    def __init__(self, *, clock: _Clock, resolver: Resolver | None, allow_private: bool) -> None:
        self._inner = httpcore.SyncBackend()
        self._clock = clock
        self._resolver = resolver
        self._allow_private = allow_private
        self.connected_to: list[str] = []

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable | None = None,
    ) -> httpcore.NetworkStream:
        addresses = resolve_within(
            host, port, self._clock.bound(timeout, httpcore.ConnectTimeout), self._resolver
        )
        if not addresses:
            raise OutboundError(CONNECTION_FAILED, f"no address for {host}")
        refused = [a for a in addresses if not address_is_public(a)]
        if refused and not self._allow_private:
            raise AddressNotAllowed(f"{host} resolves to {', '.join(refused)}")
        address = addresses[0]
        self.connected_to.append(address)
        stream = self._inner.connect_tcp(
            address,
            port,
            timeout=self._clock.bound(timeout, httpcore.ConnectTimeout),
            local_address=local_address,
            socket_options=socket_options,
        )
        return _DeadlineStream(stream, self._clock)

    def sleep(self, seconds: float) -> None:  # pragma: no cover (no retries configured)
        self._inner.sleep(seconds)


class _ResponseStream(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        if hasattr(self._stream, "close"):
            self._stream.close()


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport over an httpcore pool that connects through `_GuardedBackend`."""

    def __init__(self, backend: _GuardedBackend) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=backend,
            max_connections=1,
            retries=0,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._pool.handle_request(
            httpcore.Request(
                method=request.method,
                url=httpcore.URL(
                    scheme=request.url.raw_scheme,
                    host=request.url.raw_host,
                    port=request.url.port,
                    target=request.url.raw_path,
                ),
                headers=request.headers.raw,
                content=request.stream,
                extensions=request.extensions,
            )
        )
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _classify(exc: BaseException) -> OutboundError:
    chain = list(_causes(exc))
    detail = f"{type(exc).__name__}: {exc}"[:300]
    if any(isinstance(e, OutboundError) for e in chain):
        return next(e for e in chain if isinstance(e, OutboundError))
    if any(isinstance(e, ssl.SSLError | ssl.CertificateError) for e in chain):
        return OutboundError(TLS_ERROR, detail)
    if any(isinstance(e, httpx.TimeoutException | httpcore.TimeoutException) for e in chain):
        return OutboundError(TIMED_OUT, detail)
    return OutboundError(CONNECTION_FAILED, detail)


def _read_capped(response: httpx.Response, clock: _Clock, max_body: int) -> bytes:
    """At most `max_body` raw bytes, within the deadline; the rest is never read."""
    body = bytearray()
    try:
        for chunk in response.iter_raw():
            body += chunk
            if len(body) >= max_body:
                break
            clock.bound(None, httpcore.ReadTimeout)
    except httpx.StreamConsumed:  # a response built in memory (a test transport)
        body = bytearray(response.content)
    return bytes(body[:max_body])


def guarded_post(
    url: str,
    *,
    content: bytes,
    headers: dict[str, str],
    deadline: float = DEFAULT_DEADLINE,
    max_body: int = DEFAULT_MAX_BODY,
    allow_private: bool = False,
    resolver: Resolver | None = None,
    transport: httpx.BaseTransport | None = None,
) -> OutboundResponse:
    """POST `content` to `url` under the guarantees above; an `OutboundError` when no HTTP
    answer came. `allow_private` is for a receiver on a private network (tests, local
    setups) only.
    `transport` replaces the network entirely (tests)."""
    clock = _Clock(deadline)
    if transport is None:
        backend = _GuardedBackend(clock=clock, resolver=resolver, allow_private=allow_private)
        transport = GuardedTransport(backend)
    timeout = httpx.Timeout(deadline)
    try:
        with (
            httpx.Client(
                transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
            ) as client,
            client.stream(
                "POST",
                url,
                content=content,
                headers={**headers, "Accept-Encoding": "identity"},
            ) as response,
        ):
            return OutboundResponse(
                status=response.status_code, body=_read_capped(response, clock, max_body)
            )
    except OutboundError:
        raise
    except (httpx.HTTPError, httpcore.NetworkError, httpcore.TimeoutException, OSError) as exc:
        raise _classify(exc) from exc
    except (
        httpcore.ProtocolError,
        httpcore.UnsupportedProtocol,
        httpx.InvalidURL,
        ValueError,
    ) as exc:
        raise _classify(exc) from exc
