"""One HTTP/1.1 request and its response, between h1.py's parser and the ASGI app.

The request body is queued for ``receive()`` as it arrives (``protocol.unblocked()`` lets
the connection read on once the app takes it); the response head goes out with the first
body bytes, framed by Content-Length where the whole body came in one message, else chunked.

The app's head is checked before any of it is written (heads.py): a bad one raises
ResponseError to the app and the connection closes after the 500 that follows. A body longer
than its Content-Length is cut at that length, and one shorter ends there: either way the
connection closes, so the client can never read another response from the extra bytes.
"""

from __future__ import annotations

import asyncio
import http
from collections import deque
from typing import Any, Protocol

from hypercorn.config import Config
from hypercorn.typing import WorkerContext

from hello.heads import ResponseError, check_head, check_length

NO_BODY_STATUSES = frozenset({204, 304}) | frozenset(range(100, 200))
REASONS = {status.value: status.phrase.encode() for status in http.HTTPStatus}
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

Message = dict[str, Any]


class Connection(Protocol):
    """What a cycle needs of its connection (h1.H1Protocol)."""

    config: Config
    context: WorkerContext

    async def write(self, data: bytes) -> None: ...

    def unblocked(self) -> None: ...


class Cycle:
    """One request on the connection and the response the app gives it."""

    def __init__(self, protocol: Connection, scope: dict[str, Any], keep_alive: bool) -> None:
        self.protocol = protocol
        self.scope = scope
        self.keep_alive = keep_alive
        self.head = scope["method"] == "HEAD"
        self.expect_continue = False
        self.body: deque[bytes] = deque()
        self.buffered = 0
        self.more_body = True  # until the parser has seen the whole request body
        self.body_given = False  # the app has had all of it
        self.arrived = asyncio.Event()  # body bytes, the end of the body, or a disconnect
        self.disconnected = False
        self.started = False  # response head handed over by the app
        self.head_sent = False
        self.complete = False
        self.status = 200
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunked = False
        self.declared: int | None = None  # the app's Content-Length, where it gave one
        self.sent = 0  # body bytes the app has given, counted against ``declared``

    # --- the request, for the app ---

    def add_body(self, data: bytes) -> None:
        if self.complete:
            return  # the app answered already; the rest of the body is read and dropped
        self.body.append(data)
        self.buffered += len(data)
        self.arrived.set()

    async def receive(self) -> Message:
        if self.expect_continue and not self.started and not self.disconnected:
            self.expect_continue = False
            await self.protocol.write(CONTINUE)
        # Body as it arrives; after the whole body, wait for the end of the exchange.
        while True:
            if self.disconnected or self.complete:
                return {"type": "http.disconnect"}
            if not self.body_given and (self.body or not self.more_body):
                break
            self.arrived.clear()
            await self.arrived.wait()
        body = b"".join(self.body)
        self.body.clear()
        self.buffered = 0
        self.body_given = not self.more_body
        self.protocol.unblocked()
        return {"type": "http.request", "body": body, "more_body": self.more_body}

    # --- the response, from the app ---

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start" and not self.started:
            status = int(message["status"])
            headers = [(bytes(n).lower(), bytes(v)) for n, v in message.get("headers", ())]
            try:
                self.declared = _checked(status, headers)
            except ResponseError:
                self.keep_alive = False  # the 500 that follows ends the connection
                raise
            self.started = True
            self.status = status
            self.headers = headers
        elif kind == "http.response.body" and self.started and not self.complete:
            body = bytes(message.get("body", b""))
            more = bool(message.get("more_body", False))
            if self.disconnected:
                if not more:
                    self.complete = True
                return
            head = b"" if self.head_sent else self._head(body, more)
            fault = None
            if self.head or self.status in NO_BODY_STATUSES:
                body = b""
            elif self.declared is not None:
                body, more, fault = self._within_length(body, more)
            elif self.chunked and body:
                body = b"%x\r\n%b\r\n" % (len(body), body)
            if not more:
                self.complete = True
                self.arrived.set()  # a receive() waiting for the end gets http.disconnect
                if self.chunked:
                    body += b"0\r\n\r\n"
            if head or body:
                await self.protocol.write(head + body if head else body)
            if fault is not None:
                raise fault
        elif kind.startswith("http.response."):
            raise RuntimeError(f"unexpected ASGI message {kind!r} in this state")

    def _within_length(self, body: bytes, more: bool) -> tuple[bytes, bool, ResponseError | None]:
        """``body`` cut to what the declared Content-Length leaves room for, and the fault if
        the app broke it, after which the connection closes."""
        assert self.declared is not None
        self.sent += len(body)
        try:
            check_length(self.declared, self.sent, not more)
        except ResponseError as fault:
            self.keep_alive = False
            excess = max(self.sent - self.declared, 0)
            return body[: len(body) - excess], False, fault
        return body, more, None

    def _head(self, body: bytes, more: bool) -> bytes:
        self.head_sent = True
        names = {name for name, _ in self.headers}
        protocol = self.protocol
        if protocol.context.terminated.is_set():
            self.keep_alive = False  # shutting down: this client's next request goes elsewhere
        if any(n == b"connection" and v.lower() == b"close" for n, v in self.headers):
            self.keep_alive = False
        extra = protocol.config.response_headers("h11")
        if self.head or self.status in NO_BODY_STATUSES or b"content-length" in names:
            pass
        elif b"transfer-encoding" in names:  # the app's own "chunked" (_checked): framed here
            self.chunked = self.scope["http_version"] == "1.1"
            if not self.chunked:  # HTTP/1.0 has no chunks: the close ends the body
                self.headers = [h for h in self.headers if h[0] != b"transfer-encoding"]
                self.keep_alive = False
        elif not more:
            extra.append((b"content-length", b"%d" % len(body)))
        elif self.scope["http_version"] == "1.1":
            self.chunked = True
            extra.append((b"transfer-encoding", b"chunked"))
        else:
            self.keep_alive = False  # HTTP/1.0 without a length: the close ends the body
        if b"connection" not in names:
            if not self.keep_alive:
                extra.append((b"connection", b"close"))
            elif self.scope["http_version"] == "1.0":
                extra.append((b"connection", b"keep-alive"))
        reason = REASONS.get(self.status, b"")
        out = bytearray(b"HTTP/1.1 %d %b\r\n" % (self.status, reason))
        for name, value in (*self.headers, *extra):
            out += b"%b: %b\r\n" % (name, value)
        out += b"\r\n"
        return bytes(out)


def _checked(status: int, headers: list[tuple[bytes, bytes]]) -> int | None:
    """heads.check_head, and HTTP/1.1's framing rules for an app's own Transfer-Encoding:
    only "chunked" (which this protocol then frames), never beside a Content-Length."""
    declared = check_head(status, headers)
    for name, value in headers:
        if name == b"transfer-encoding":
            if value.lower() != b"chunked":
                raise ResponseError(f"Transfer-Encoding {value!r}: only chunked can be sent")
            if declared is not None:
                raise ResponseError("both Content-Length and Transfer-Encoding")
    return declared
