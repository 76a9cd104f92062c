"""A small asyncio HTTP/1.1 server for the simulator, and the programmatic API.

Why asyncio and not `http.server`: the benchmark keeps 32-64 keep-alive connections busy with
50 ms of injected latency per response. One event loop sleeps through all of those delays
concurrently with no thread per connection, and parses requests far more cheaply than
`http.server` (which runs the `email` header parser per request).

The parser handles what httpx and curl send: a request line, headers, an optional
Content-Length body, keep-alive (HTTP/1.1 default) and `Connection: close`. A POST body in
`application/x-www-form-urlencoded` or `multipart/form-data` is decoded into `Request.form`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.parser
import email.policy
import threading
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from usage.simulator import traffic
from usage.simulator.app import SimulatorApp
from usage.simulator.clock import to_epoch
from usage.simulator.config import DEFAULT_API_ID, SimulatorConfig
from usage.simulator.consumption import describe_sub_account
from usage.simulator.faults import FaultSettings
from usage.simulator.state import Request, Response

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024
REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return method.upper(), target, version.strip().upper(), headers


def parse_form(content_type: str, body: bytes) -> dict[str, str]:
    """Form fields of a POST body (first value of each); {} when it is not a readable form."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        text = body.decode("utf-8", "replace")
        return dict(reversed(parse_qsl(text, keep_blank_values=True)))
    if kind != "multipart/form-data":
        return {}
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        return {}
    form: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes) and name not in form:
            form[name] = payload.decode("utf-8", "replace")
    return form


def _encode(response: Response, *, keep_alive: bool) -> bytes:
    reason = REASONS.get(response.status, "Unknown")
    lines = [
        f"HTTP/1.1 {response.status} {reason}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        "Connection: keep-alive" if keep_alive else "Connection: close",
        *(f"{name}: {value}" for name, value in response.headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body


class _Server:
    """The asyncio side: accepts connections and feeds requests to the app."""

    def __init__(self, app: SimulatorApp):
        self.app = app
        self.server: asyncio.base_events.Server | None = None
        self.connections: set[asyncio.Task[Any]] = set()

    async def start(self, host: str, port: int) -> int:
        self.server = await asyncio.start_server(
            self._connection, host, port, backlog=2048, reuse_address=True
        )
        return self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.connections):
            task.cancel()
        if self.connections:
            await asyncio.gather(*self.connections, return_exceptions=True)
        if self.server is not None:
            with contextlib.suppress(Exception):
                await self.server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.connections.add(task)
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            if task is not None:
                self.connections.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Serve one request; False when the connection should close."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        if len(head) > MAX_HEADER_BYTES:
            return False
        try:
            method, target, version, headers = _parse_head(head[:-4])
        except ValueError:
            writer.write(_encode(Response(400, b"bad request", "text/plain"), keep_alive=False))
            await writer.drain()
            return False
        length = int(headers.get("content-length") or 0)
        if length > MAX_BODY_BYTES:
            writer.write(_encode(Response(413, b"too large", "text/plain"), keep_alive=False))
            await writer.drain()
            return False
        body = await reader.readexactly(length) if length else b""
        connection = headers.get("connection", "").lower()
        keep_alive = (version == "HTTP/1.1" and connection != "close") or (
            version == "HTTP/1.0" and connection == "keep-alive"
        )
        url = urlsplit(target)
        query = dict(reversed(parse_qsl(url.query, keep_blank_values=True)))
        form = parse_form(headers.get("content-type", ""), body) if method == "POST" else {}
        request = Request(method, url.path, query, headers, body, form)
        try:
            response = self.app.handle(request)
        except Exception as exc:  # a simulator bug must not kill the connection loop
            response = Response(
                500, f"simulator error: {type(exc).__name__}".encode(), "text/plain"
            )
        if response.delay > 0:
            stats = self.app.state.stats
            stats.delay_started()
            try:
                await asyncio.sleep(response.delay)
            finally:
                stats.delay_ended()
        if response.disconnect:
            return False
        writer.write(_encode(response, keep_alive=keep_alive))
        await writer.drain()
        return keep_alive


class RunningSimulator:
    """A simulator serving on a background thread. Use as a context manager or call `stop()`.

    Every control operation of the `/_sim/` endpoints is also a method here.
    """

    def __init__(self, app: SimulatorApp, host: str):
        self.app = app
        self.host = host
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server = _Server(app)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="upstream-simulator", daemon=True)

    # ------------------------------------------------------------------ lifecycle

    def _start(self, port: int) -> None:
        self._requested_port = port
        self._thread.start()
        self._ready.wait(timeout=10)
        if self._error is not None:
            raise self._error
        if not self._ready.is_set():
            raise RuntimeError("the simulator did not start within 10 s")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self.port = self._loop.run_until_complete(
                self._server.start(self.host, self._requested_port)
            )
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._server.close())
            self._loop.close()

    def stop(self) -> None:
        """Stop serving and join the thread (idempotent)."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def __enter__(self) -> RunningSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def config(self) -> SimulatorConfig:
        return self.app.state.config

    # ------------------------------------------------------------------ control

    def stats(self) -> dict[str, Any]:
        return self.app.stats()

    def reset_stats(self) -> None:
        self.app.reset_stats()

    def set_faults(self, **changes: Any) -> FaultSettings:
        """Change fault switches: knobs (`latency_ms=50`) and rules by kind
        (`http_5xx=2` for the next two requests, `html="p:0.1"`, `slow=FaultRule(...)`,
        `negative_flow=None` to clear); `reset=True` first turns everything off."""
        return self.app.set_faults(changes)

    def reset_faults(self) -> None:
        self.app.set_faults({"reset": True})

    def now(self) -> dt.datetime:
        return self.app.state.clock.now_datetime()

    def set_clock(
        self,
        *,
        now: dt.datetime | None = None,
        offset_seconds: float | None = None,
        advance_seconds: float | None = None,
        real: bool = False,
    ) -> dt.datetime:
        """Freeze the clock at `now`, or run real time shifted by `offset_seconds`, or move it
        by `advance_seconds`, or go back to real time. Returns the new "now"."""
        self.app.set_clock(
            {
                "real": real,
                "now": now.isoformat() if now is not None else None,
                "offset_seconds": offset_seconds,
                "advance_seconds": advance_seconds,
            }
        )
        return self.now()

    def advance(self, seconds: float) -> dt.datetime:
        return self.set_clock(advance_seconds=seconds)

    def set_rate_limit(self, *, enabled: bool | None = None, per_minute: int | None = None) -> None:
        self.app.state.limiter.configure(enabled=enabled, per_minute=per_minute)

    def revise(self, *, account: str, hour: dt.datetime, flow: str) -> None:
        """Make IPFoxy report `flow` (MB) for `account`'s hour starting at `hour` (aware)."""
        self.app.state.revise(account, int(to_epoch(hour)), flow)

    def clear_revisions(self) -> None:
        self.app.state.clear_revisions()

    def add_token(self, *, token: str, account: str) -> None:
        self.app.state.add_token(token, account)

    def expire_token(self, token: str) -> None:
        self.app.state.expire_token(token)

    def restore_token(self, token: str) -> None:
        self.app.state.restore_token(token)

    # ------------------------------------------------------------------ reseller book

    def _epoch(self) -> int:
        return int(self.app.state.clock.now())

    def pool(self, api_id: str = DEFAULT_API_ID) -> dict[str, str]:
        """The api-id's main-account pool: `total_mb`, `allocated_mb`, `remaining_mb`."""
        return self.app.state.book.pool(api_id)

    def set_pool(
        self, *, total_mb: int | None = None, add_mb: int | None = None,
        api_id: str = DEFAULT_API_ID,
    ) -> dict[str, str]:  # fmt: skip
        return self.app.state.book.set_pool(api_id, total_mb=total_mb, add_mb=add_mb)

    def sub_account(self, account: str) -> dict[str, Any] | None:
        """A provisioned sub-account settled at "now" (MB strings), or None."""
        sub = self.app.state.book.snapshot(account, self._epoch())
        return describe_sub_account(sub) if sub is not None else None

    def hourly_usage(self, account: str) -> dict[dt.datetime, str]:
        """UTC hour start -> MB a provisioned sub-account used in that hour (non-zero only)."""
        sub = self.app.state.book.snapshot(account, self._epoch())
        hours = sub.hours if sub is not None else {}
        return {
            dt.datetime.fromtimestamp(h, dt.UTC): traffic.format_centi(c)
            for h, c in sorted(hours.items())
            if c
        }

    def set_sub_account_status(self, account: str, status: int) -> None:
        """1 normal, 2 disabled (upstream-side; a disabled sub-account uses no traffic)."""
        self.app.state.book.set_status(account, status, self._epoch())

    def client_login(self, account: str, password: str) -> None:
        """The customer's proxy client starts sending `password` (matters only with
        `ipfoxy_password_gates_traffic`)."""
        self.app.state.book.client_login(account, password, self._epoch())

    # ------------------------------------------------------------------ expectations for tests

    def expected_hourly_flows(
        self, *, account: str, start: dt.datetime, end: dt.datetime
    ) -> dict[dt.datetime, str]:
        """UTC hour start -> MB string IPFoxy reports right now for hours in [start, end)
        (revisions and the partial current hour included)."""
        state = self.app.state
        now = int(state.clock.now())
        revised = state.account_revisions(account)
        first, last = int(to_epoch(start)), int(to_epoch(end)) - 1
        return {
            dt.datetime.fromtimestamp(h, dt.UTC): traffic.format_centi(
                state.hour_value(account, h, now, revised)
            )
            for h in reversed(state.hourly_rows(account, first, last, now))
        }


def start_simulator(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    seed: int | None = None,
    config: SimulatorConfig | None = None,
) -> RunningSimulator:
    """Start a simulator on a background thread and return once it accepts connections.

    `port=0` picks a free port (read `.url`). `seed` overrides `config.seed`.
    """
    config = config or SimulatorConfig()
    if seed is not None and seed != config.seed:
        config = replace(config, seed=seed)
    running = RunningSimulator(SimulatorApp(config), host)
    running._start(port)
    return running


def serve_forever(*, host: str, port: int, config: SimulatorConfig, on_ready=None) -> None:
    """Serve in the foreground until interrupted (Ctrl-C). `on_ready(url)` is called once
    the socket listens."""
    app = SimulatorApp(config)

    async def main() -> None:
        server = _Server(app)
        bound = await server.start(host, port)
        if on_ready is not None:
            on_ready(f"http://{host}:{bound}")
        try:
            await asyncio.Event().wait()
        finally:
            await server.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
