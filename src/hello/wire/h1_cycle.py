"""One HTTP/1.1 request and its response, between h1.py's parser and the ASGI app.

The request body is queued for ``receive()`` as it arrives (``protocol.unblocked()`` lets
the connection read on once the app takes it); the response head goes out with the first
body bytes, framed by Content-Length where the whole body came in one message, else chunked.

Response trailers (``http.response.trailers``) go out after the last chunk, to a client that
said ``TE: trailers``, in a chunked body (a response with a Content-Length cannot carry them:
they are dropped). ASGI's path send (``http.response.pathsend``) is offered: the file goes out
a chunk at a time, each read once the last was written (and taken, when the client is slow),
through the same checks as any body.

The app's head is checked before any of it is written (heads.py): a bad one raises
ResponseError to the app and the connection closes after the 500 that follows. A body longer
than its Content-Length is cut at that length, and one shorter ends there: either way the
connection closes, so the client can never read another response from the extra bytes.
"""

from __future__ import annotations

import asyncio
import http
import os
from collections import deque
from collections.abc import Iterable
from typing import Any, Protocol

from hypercorn.typing import WorkerContext

from hello.files.reading import read_at
from hello.files.sources import MULTIPLEXED_CHUNK, STREAM_CHUNK
from hello.heads import (
    BAD_VALUE,
    TOKEN,
    ResponseError,
    check_header,
    check_length,
    check_status,
    content_length,
)
from hello.wire.policy import NO_BODY_STATUSES

REASONS = {status.value: status.phrase.encode() for status in http.HTTPStatus}
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

Message = dict[str, Any]


class Lines(Protocol):
    """What a cycle needs of the server's configuration (server/hypercorn_config.py)."""

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


class Cycle:
    """One request on the connection and the response the app gives it."""

    # Defaults on the class: a request sets only what differs (most requests: nothing).
    expect_continue = False
    buffered = 0
    more_body = True  # until the parser has seen the whole request body
    body_given = False  # the app has had all of it
    disconnected = False
    started = False  # response head handed over by the app
    head_sent = False
    complete = False
    status = 200
    lines = b""  # the app's headers, checked and encoded, for the head
    framed = False  # the app gave Content-Length or Transfer-Encoding
    own_connection = False  # the app gave a Connection header
    chunked = False
    asked_trailers = False  # the app said it will send trailers
    trailers = False  # ...and they can go: chunked, to a client that takes them
    awaiting_trailers = False  # the body has ended; the chunked end waits for the trailers
    trailer_lines = b""
    declared: int | None = None  # the app's Content-Length, where it gave one
    sent = 0  # body bytes the app has given, counted against ``declared``

    def __init__(self, protocol: Connection, scope: dict[str, Any], keep_alive: bool) -> None:
        self.protocol = protocol
        self.scope = scope
        self.keep_alive = keep_alive
        self.head = scope["method"] == "HEAD"
        self.body: deque[bytes] = deque()
        self.arrived = asyncio.Event()  # body bytes, the end of the body, or a disconnect

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
        if self.protocol.held:
            self.protocol.unblocked()
        return {"type": "http.request", "body": body, "more_body": self.more_body}

    # --- the response, from the app ---

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start" and not self.started:
            status = int(message["status"])
            try:
                self._start(status, message.get("headers", ()))
            except ResponseError:
                self.keep_alive = False  # the 500 that follows ends the connection
                raise
            self.started = True
            self.status = status
            if message.get("trailers"):
                self.asked_trailers = True
                self.trailers = self._trailers_can_go()
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
                self.sent += len(body)
                if self.sent > self.declared or (not more and self.sent < self.declared):
                    body, more, fault = self._beyond_length(body)
            elif self.chunked and body:
                body = b"%x\r\n%b\r\n" % (len(body), body)
            if not more and self.trailers:
                self.awaiting_trailers = True  # the chunked end goes with them
            elif not more:
                self.complete = True
                self.arrived.set()  # a receive() waiting for the end gets http.disconnect
                if self.chunked:
                    body += b"0\r\n\r\n"
            if head or body:
                await self.protocol.write(head + body if head else body)
            if fault is not None:
                raise fault
        elif kind == "http.response.pathsend" and self.started and not self.complete:
            await self._pathsend(os.fspath(message["path"]))
        elif kind == "http.response.trailers" and self.awaiting_trailers:
            await self._trailers(message)
        elif kind == "http.response.trailers" and self.asked_trailers:
            pass  # trailers that cannot go (see _trailers_can_go), or after a disconnect
        elif kind.startswith("http.response."):
            raise RuntimeError(f"unexpected ASGI message {kind!r} in this state")

    def _trailers_can_go(self) -> bool:
        """Whether this response can carry trailers: a chunked HTTP/1.1 body (not one framed
        by the app's Content-Length), to a client that said ``TE: trailers``."""
        if self.declared is not None or self.head or self.status in NO_BODY_STATUSES:
            return False
        if self.scope["http_version"] != "1.1":
            return False
        return any(n == b"te" and b"trailers" in v.lower() for n, v in self.scope["headers"])

    async def _trailers(self, message: Message) -> None:
        """The app's trailers, checked as its head was; the last message ends the body."""
        lines = bytearray(self.trailer_lines)
        for raw_name, raw_value in message.get("headers", ()):
            name, value = bytes(raw_name).lower(), bytes(raw_value)
            check_header(name, value)
            lines += b"%b: %b\r\n" % (name, value)
        self.trailer_lines = bytes(lines)
        if message.get("more_trailers", False):
            return
        self.awaiting_trailers = False
        self.complete = True
        self.arrived.set()
        if not self.disconnected:
            await self.protocol.write(b"0\r\n" + self.trailer_lines + b"\r\n")

    async def _pathsend(self, path: str) -> None:
        """The file at ``path`` as the whole body: over TLS in record-sized chunks, as static
        files go (files/sources.py says why), each read once the last was written."""
        if self.head or self.status in NO_BODY_STATUSES:
            await self.send({"type": "http.response.body", "body": b""})
            return
        piece = MULTIPLEXED_CHUNK if self.protocol.scheme == "https" else STREAM_CHUNK
        fd = os.open(path, os.O_RDONLY)
        try:
            size, offset = os.fstat(fd).st_size, 0
            more = True
            while more and not self.complete:
                chunk = (
                    await read_at(fd, offset, min(piece, size - offset)) if offset < size else b""
                )
                if offset < size and not chunk:
                    raise OSError(f"{path} shrank while it was being sent")
                offset += len(chunk)
                more = offset < size and not self.disconnected
                # The last one ends the body (or, with trailers to come, waits for them).
                await self.send({"type": "http.response.body", "body": chunk, "more_body": more})
        finally:
            os.close(fd)

    def _beyond_length(self, body: bytes) -> tuple[bytes, bool, ResponseError]:
        """The app broke its declared Content-Length with ``body`` (counted in ``sent``):
        what of it fits, and the fault; the connection closes after it."""
        assert self.declared is not None
        self.keep_alive = False
        try:
            check_length(self.declared, self.sent, True)
        except ResponseError as fault:
            excess = max(self.sent - self.declared, 0)
            return body[: len(body) - excess], False, fault
        raise AssertionError("the length was broken")

    def _start(self, status: int, headers: Iterable[tuple[bytes, bytes]]) -> None:
        """Check the app's head (heads.py) and HTTP/1.1's framing rules for its own
        Transfer-Encoding (only "chunked", which this protocol then frames, never beside a
        Content-Length), encoding its headers on the way: one pass."""
        check_status(status)
        lines = bytearray()
        declared: int | None = None
        coding = False
        for raw_name, raw_value in headers:
            name, value = bytes(raw_name).lower(), bytes(raw_value)
            if TOKEN.fullmatch(name) is None or BAD_VALUE.search(value) is not None:
                check_header(name, value)  # raises, saying which
            if name == b"content-length":
                declared = content_length(value, declared)
            elif name == b"transfer-encoding":
                if value.lower() != b"chunked":
                    raise ResponseError(f"Transfer-Encoding {value!r}: only chunked can be sent")
                coding = True
            elif name == b"connection":
                if value.lower() == b"close":
                    self.keep_alive = False
                self.own_connection = True
            lines += b"%b: %b\r\n" % (name, value)
        if coding and declared is not None:
            raise ResponseError("both Content-Length and Transfer-Encoding")
        self.declared = declared
        self.framed = declared is not None or coding
        if coding:
            self.chunked = self.scope["http_version"] == "1.1"
            if not self.chunked:  # HTTP/1.0 has no chunks: the close ends the body
                lines = _without(lines, b"transfer-encoding")
                self.keep_alive = False
        self.lines = bytes(lines)

    def _head(self, body: bytes, more: bool) -> bytes:
        self.head_sent = True
        protocol = self.protocol
        if protocol.context.terminated.is_set():
            self.keep_alive = False  # shutting down: this client's next request goes elsewhere
        out = bytearray(b"HTTP/1.1 %d %b\r\n" % (self.status, REASONS.get(self.status, b"")))
        out += self.lines
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


def _without(lines: bytearray, name: bytes) -> bytearray:
    """Encoded header ``lines`` without those named ``name``."""
    kept = [
        line for line in bytes(lines).split(b"\r\n") if line and not line.startswith(name + b":")
    ]
    return bytearray(b"".join(line + b"\r\n" for line in kept))
