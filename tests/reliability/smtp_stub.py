"""A tiny SMTP server for the drills: accepts mail, or stalls where a drill needs a crash.

`smtpd` is gone from Python 3.12 and aiosmtpd is not a dependency, so this speaks just the
part of SMTP that Django's backend uses (EHLO/HELO, AUTH PLAIN, MAIL, RCPT, DATA, RSET,
NOOP, QUIT) over plain sockets, one thread per connection.

Each DATA is handled by the next entry of `plan` (then `accept` once the plan runs out):

- `accept`: 250, the message is recorded in `accepted`;
- `stall_before_accept`: the message is read but never answered (the server has not taken
  responsibility for it): it goes to `abandoned` and the connection hangs until the client
  goes away (a SIGKILLed worker);
- `stall_after_accept`: 250 (recorded in `accepted`), then the QUIT is never answered;
- `temp_fail`: 451, nothing recorded (the client sees an SMTPDataError).

`stalled` is set when a stall begins, so a drill can kill the worker exactly then.
"""

from __future__ import annotations

import base64
import contextlib
import email
import socket
import socketserver
import threading
from collections import deque
from dataclasses import dataclass, field


@dataclass
class Received:
    message_id: str
    recipients: list[str]
    raw: bytes


@dataclass
class SmtpStub:
    host: str = "127.0.0.1"
    plan: deque = field(default_factory=deque)
    accepted: list[Received] = field(default_factory=list)
    abandoned: list[Received] = field(default_factory=list)
    auth_seen: list[str] = field(default_factory=list)
    stalled: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> SmtpStub:
        stub = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                stub._serve(self.rfile, self.connection)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server((self.host, 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def message_ids(self) -> list[str]:
        with self._lock:
            return [m.message_id for m in self.accepted]

    # ------------------------------------------------------------------ protocol

    def _next_action(self) -> str:
        with self._lock:
            return self.plan.popleft() if self.plan else "accept"

    def _serve(self, rfile, conn: socket.socket) -> None:
        def send(line: str) -> None:
            conn.sendall(line.encode() + b"\r\n")

        def hang() -> None:
            self.stalled.set()
            with contextlib.suppress(OSError):
                while conn.recv(1024):
                    pass

        send("220 drill-smtp ready")
        recipients: list[str] = []
        stall_quit = False
        while True:
            line = rfile.readline()
            if not line:
                return
            verb, _, arg = line.decode("utf-8", "replace").strip().partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                send("250-drill-smtp")
                send("250-AUTH PLAIN")
                send("250 8BITMIME")
            elif verb == "HELO":
                send("250 drill-smtp")
            elif verb == "AUTH":
                method, _, initial = arg.partition(" ")
                if method.upper() != "PLAIN" or not initial:
                    send("504 only AUTH PLAIN with an initial response")
                    continue
                with self._lock:
                    self.auth_seen.append(base64.b64decode(initial).decode("utf-8", "replace"))
                send("235 ok")
            elif verb == "MAIL":
                recipients = []
                send("250 ok")
            elif verb == "RCPT":
                recipients.append(arg.partition(":")[2].strip().strip("<>"))
                send("250 ok")
            elif verb == "DATA":
                send("354 end with <CRLF>.<CRLF>")
                chunks = []
                while True:
                    data = rfile.readline()
                    if not data:
                        return
                    if data in (b".\r\n", b".\n"):
                        break
                    chunks.append(data[1:] if data.startswith(b"..") else data)
                raw = b"".join(chunks)
                # Unfolded: a long Message-ID is folded onto a second line (RFC 5322).
                message_id = " ".join(
                    str(email.message_from_bytes(raw).get("Message-ID", "")).split()
                )
                received = Received(message_id, list(recipients), raw)
                action = self._next_action()
                if action == "stall_before_accept":
                    with self._lock:
                        self.abandoned.append(received)
                    hang()
                    return
                if action == "temp_fail":
                    send("451 try again later")
                    continue
                with self._lock:
                    self.accepted.append(received)
                stall_quit = action == "stall_after_accept"
                send("250 accepted")
            elif verb in ("RSET", "NOOP"):
                send("250 ok")
            elif verb == "QUIT":
                if stall_quit:
                    hang()
                    return
                send("221 bye")
                return
            else:
                send("502 not implemented")
