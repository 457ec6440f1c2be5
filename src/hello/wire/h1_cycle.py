"""One HTTP/1.1 request and its response: the exchange (exchange.py) framed for HTTP/1.1.

The request body is queued for ``receive()`` as it arrives (``protocol.unblocked()`` lets
the connection read on once the app takes it); the response head goes out with the first
body bytes, framed by Content-Length where the whole body came in one message, else chunked.
Response trailers go out after the last chunk, so only in a chunked body (a response with
a Content-Length cannot carry them: they are dropped). A body that breaks its
Content-Length closes the connection after what fits, so the client can never read another
response from the extra bytes; so does a 500 for a head the checks refused.
"""

from __future__ import annotations

import http
from collections.abc import Awaitable
from typing import Any, Protocol

from hypercorn.typing import WorkerContext

from hello.files.sources import MULTIPLEXED_CHUNK, STREAM_CHUNK
from hello.heads import ResponseError
from hello.wire.exchange import Exchange, Headers
from hello.wire.policy import NO_BODY_STATUSES

REASONS = {status.value: status.phrase.encode() for status in http.HTTPStatus}
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Lines(Protocol):
    """What a cycle needs of the server's configuration (wire/config.py)."""

    def response_lines(self, protocol: str) -> bytes: ...


class Connection(Protocol):
    """What a cycle needs of its connection (h1.H1Protocol)."""

    @property
    def config(self) -> Lines: ...

    context: WorkerContext
    scheme: str  # "https" over TLS
    held: bool  # reading waits for something: unblocked() has work to do

    async def write(self, data: bytes) -> None: ...

    def unblocked(self) -> None: ...


class Cycle(Exchange):
    """One request on the connection and the response the app gives it."""

    framed = False  # the app gave Content-Length or Transfer-Encoding
    own_connection = False  # the app gave a Connection header
    coding = False  # the app gave Transfer-Encoding: chunked
    chunked = False  # the body goes out in chunks
    SPECIAL = frozenset({b"content-length", b"transfer-encoding", b"connection"})

    def __init__(self, protocol: Connection, scope: dict[str, Any], keep_alive: bool) -> None:
        super().__init__(scope)
        self.protocol = protocol
        self.keep_alive = keep_alive

    def _taken(self, size: int) -> None:
        if self.protocol.held:
            self.protocol.unblocked()

    async def _continue(self) -> None:
        await self.protocol.write(CONTINUE)

    def _path_chunk(self) -> int:
        """Over TLS, record-sized chunks, as static files go (files/sources.py says why)."""
        return MULTIPLEXED_CHUNK if self.protocol.scheme == "https" else STREAM_CHUNK

    def _failing(self) -> None:
        self.keep_alive = False  # the 500 that follows ends the connection
        self.coding = self.own_connection = False

    # --- the head ---

    def _keep(self, name: bytes, value: bytes) -> bool:
        """HTTP/1.1's framing rules for the app's own Transfer-Encoding (only "chunked",
        which this protocol then frames, never beside a Content-Length) and Connection."""
        if name == b"transfer-encoding":
            if value.lower() != b"chunked":
                raise ResponseError(f"Transfer-Encoding {value!r}: only chunked can be sent")
            self.coding = True
            if self.scope["http_version"] != "1.1":
                self.keep_alive = False  # HTTP/1.0 has no chunks: the close ends the body
                return False
        elif name == b"connection":
            if value.lower() == b"close":
                self.keep_alive = False
            self.own_connection = True
        return True

    def _framing(self, status: int, declared: int | None, headers: Headers) -> None:
        if self.coding and declared is not None:
            raise ResponseError("both Content-Length and Transfer-Encoding")
        self.framed = declared is not None or self.coding
        self.chunked = self.coding and self.scope["http_version"] == "1.1"

    def _trailers_can_go(self) -> bool:
        """Trailers go in a chunked HTTP/1.1 body only: not one the app framed with its
        Content-Length."""
        if self.declared is not None or self.scope["http_version"] != "1.1":
            return False
        return super()._trailers_can_go()

    # --- the wire ---

    def _emit(self, body: bytes, more: bool, fault: ResponseError | None) -> Awaitable[None] | None:
        if fault is not None:
            self.keep_alive = False
        head = b"" if self.head_sent else self._head(body, more)
        if self.chunked:
            if body:
                body = b"%x\r\n%b\r\n" % (len(body), body)
            if not more and not self.awaiting_trailers:
                body += b"0\r\n\r\n"
        if head or body:
            return self.protocol.write(head + body if head else body)
        return None

    async def _emit_trailers(self, headers: Headers) -> None:
        lines = b"".join([b"%b: %b\r\n" % pair for pair in headers])
        await self.protocol.write(b"0\r\n" + lines + b"\r\n")

    def _head(self, body: bytes, more: bool) -> bytes:
        self.head_sent = True
        protocol = self.protocol
        if protocol.context.terminated.is_set():
            self.keep_alive = False  # shutting down: this client's next request goes elsewhere
        out = bytearray(b"HTTP/1.1 %d %b\r\n" % (self.status, REASONS.get(self.status, b"")))
        for pair in self.headers:
            out += b"%b: %b\r\n" % pair
        out += protocol.config.response_lines("h11")
        if self.framed or self.head or self.status in NO_BODY_STATUSES:
            pass
        elif not more and not self.trailers:
            out += b"content-length: %d\r\n" % len(body)
        elif self.scope["http_version"] == "1.1":
            self.chunked = True
            out += b"transfer-encoding: chunked\r\n"
        else:
            self.keep_alive = False  # HTTP/1.0 without a length: the close ends the body
        if not self.own_connection:
            if not self.keep_alive:
                out += b"connection: close\r\n"
            elif self.scope["http_version"] == "1.0":
                out += b"connection: keep-alive\r\n"
        out += b"\r\n"
        return bytes(out)
