"""One HTTP/1.1 request and its response, between h1.py's parser and the ASGI app.

The request body is queued for ``receive()`` as it arrives (``protocol.unblocked()`` lets
the connection read on once the app takes it); the response head goes out with the first
body bytes, framed by Content-Length where the whole body came in one message, else chunked.
"""

from __future__ import annotations

import asyncio
import http
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hello.wire.h1 import H1Protocol

NO_BODY_STATUSES = frozenset({204, 304}) | frozenset(range(100, 200))
REASONS = {status.value: status.phrase.encode() for status in http.HTTPStatus}
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

Message = dict[str, Any]


class Cycle:
    """One request on the connection and the response the app gives it."""

    def __init__(self, protocol: H1Protocol, scope: dict[str, Any], keep_alive: bool) -> None:
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
            self.started = True
            self.status = int(message["status"])
            self.headers = [(bytes(n).lower(), bytes(v)) for n, v in message.get("headers", ())]
        elif kind == "http.response.body" and self.started and not self.complete:
            body = bytes(message.get("body", b""))
            more = bool(message.get("more_body", False))
            if self.disconnected:
                if not more:
                    self.complete = True
                return
            head = b"" if self.head_sent else self._head(body, more)
            if not body or self.head or self.status in NO_BODY_STATUSES:
                body = b""
            elif self.chunked:
                body = b"%x\r\n%b\r\n" % (len(body), body)
            if not more:
                self.complete = True
                self.arrived.set()  # a receive() waiting for the end gets http.disconnect
                if self.chunked:
                    body += b"0\r\n\r\n"
            if head or body:
                await self.protocol.write(head + body if head else body)
        elif kind.startswith("http.response."):
            raise RuntimeError(f"unexpected ASGI message {kind!r} in this state")

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
