"""One request and its response: the rules every protocol shares, written once.

A protocol driver (h1.py for HTTP/1.1, http2.py for HTTP/2) parses a request, builds its scope
(``http_scope``) and an ``Exchange`` of its own kind, hands it the request body as it arrives
(``add_body``, ``end_body``) or says the client is gone (``gone``), and runs the app on it
(``serve``). The exchange gives the app ``receive`` and ``send`` and holds to ASGI and HTTP:

- the request body is queued until the app takes it; what was taken is given back to the
  driver (``_taken``: HTTP/1.1 reads on, HTTP/2 opens the client's window again);
- ``Expect: 100-continue`` is answered only when the app first asks for the body, so an app
  that answers without reading (401, 413) spares the client the upload;
- the app's head is checked before any of it is written (heads.py): a status that is not
  three digits, a header name that is no token, a value with a control character, two
  different Content-Lengths; each raises ResponseError to the app, and nothing goes out;
- a body longer than its Content-Length is cut at that length, one shorter is noticed at
  its end: either is a ResponseError, and the driver ends the exchange so that the client
  cannot take the wrong bytes for a whole response (HTTP/1.1 closes, HTTP/2 resets);
- HEAD, 1xx, 204 and 304 responses carry no body, whatever the app sends;
- ASGI's path send (``http.response.pathsend``) and response trailers
  (``http.response.trailers``, to a client that said ``TE: trailers``) are offered on every
  protocol; trailers are checked as the head is;
- an app that fails before its response gets a 500; one that returns without ending its
  response has the exchange ended by the driver (``_unfinished``).

What differs per protocol is only the framing, in four methods a driver's exchange writes:
``_keep`` (a header of the app's the protocol treats itself), ``_emit`` (head and body on the
wire), ``_emit_trailers``, ``_continue``; and ``_taken``, ``_unfinished``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import unquote

from hello.files.reading import read_at
from hello.files.sources import STREAM_CHUNK
from hello.heads import (
    BAD_VALUE,
    TOKEN,
    ResponseError,
    check_header,
    check_status,
    content_length,
    length_fault,
)
from hello.wire.policy import NO_BODY_STATUSES

log = logging.getLogger("hello")

Message = dict[str, Any]
Headers = list[tuple[bytes, bytes]]
ASGI_VERSION = {"spec_version": "2.3", "version": "3.0"}


def http_scope(
    http_version: str,
    method: str,
    scheme: str,
    target: bytes,
    headers: Headers,
    client: tuple[str, int] | None,
    server: tuple[str, int] | None,
    root_path: str,
    state: dict[str, Any],
) -> dict[str, Any]:
    """The ASGI scope of one request, on any protocol: ``target`` is the request's path
    and query, as it came (``/a%20b?x=1``)."""
    raw_path, _, query = target.partition(b"?")
    text = raw_path.decode("ascii", "replace")
    return {
        "type": "http",
        "asgi": ASGI_VERSION,
        "http_version": http_version,
        "method": method,
        "scheme": scheme,
        "path": unquote(text) if "%" in text else text,
        "raw_path": raw_path,
        "query_string": query,
        "root_path": root_path,
        "headers": headers,
        "client": client,
        "server": server,
        "state": state,
        "extensions": {"http.response.trailers": {}, "http.response.pathsend": {}},
    }


class ErrorLog(Protocol):
    """Where an app's exception is logged: Hypercorn's logger (``config.log``) as the
    drivers have it."""

    async def exception(self, message: str) -> None: ...


class Exchange:
    """One request and the response the app gives it; a driver's subclass frames it."""

    # Defaults on the class: a request sets only what differs (most requests: nothing).
    more_body = True  # until the driver has seen the whole request body
    expect_continue = False  # the client waits for 100 Continue before sending the body
    body_given = False  # the app has had all of it
    buffered = 0  # body bytes received and not yet taken by the app
    disconnected = False  # the client is gone (or reset the stream)
    started = False  # the app gave its response head, and it passed the checks
    head_sent = False
    complete = False  # the response has ended (its body, and its trailers if due)
    status = 200
    declared: int | None = None  # the app's Content-Length
    sent = 0  # body bytes the app has given, counted against ``declared``
    asked_trailers = False  # the app said it will send trailers
    trailers = False  # ...and they can go on this response
    awaiting_trailers = False  # the body has ended; the response's end waits for them
    trailer_headers: Headers | None = None
    arrived: asyncio.Event | None = None  # made when receive() must wait
    # Header names ``_keep`` is asked about; Content-Length is the exchange's own.
    SPECIAL: frozenset[bytes] = frozenset({b"content-length"})

    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope
        self.head = scope["method"] == "HEAD"
        self.body: deque[bytes] = deque()
        self.headers: Headers = []

    # --- the request, from the driver ---

    def add_body(self, data: bytes) -> bool:
        """Queue request body bytes for the app; False if they are not wanted (the response
        has ended or the client is gone): the driver drops them."""
        if self.complete or self.disconnected:
            return False
        self.body.append(data)
        self.buffered += len(data)
        if self.arrived is not None:
            self.arrived.set()
        return True

    def end_body(self) -> None:
        self.more_body = False
        if self.arrived is not None:
            self.arrived.set()

    def gone(self) -> None:
        """The client is gone, or reset the stream: ``receive`` says so; ``send`` drops."""
        self.disconnected = True
        if self.arrived is not None:
            self.arrived.set()

    # --- the request, for the app ---

    async def receive(self) -> Message:
        if self.expect_continue:
            self.expect_continue = False
            if not (self.started or self.disconnected) and self.more_body:
                await self._continue()
        # Body as it arrives; after the whole body, wait for the end of the exchange.
        while True:
            if self.disconnected or self.complete:
                return {"type": "http.disconnect"}
            if not self.body_given and (self.body or not self.more_body):
                break
            if self.arrived is None:
                self.arrived = asyncio.Event()
            self.arrived.clear()
            await self.arrived.wait()
        body = b"".join(self.body) if len(self.body) != 1 else self.body[0]
        self.body.clear()
        self.body_given = not self.more_body
        taken, self.buffered = self.buffered, 0
        self._taken(taken)
        return {"type": "http.request", "body": body, "more_body": self.more_body}

    # --- the response, from the app ---

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.body" and self.started and not self.complete:
            body = message.get("body", b"")
            more = bool(message.get("more_body", False))
            pending = self._body(body if type(body) is bytes else bytes(body), more)
            if pending is not None:
                await pending
        elif kind == "http.response.start" and not self.started:
            self._start(message)
        elif kind == "http.response.pathsend" and self.started and not self.complete:
            await self._pathsend(os.fspath(message["path"]))
        elif kind == "http.response.trailers" and self.awaiting_trailers:
            await self._trailers(message)
        elif kind == "http.response.trailers" and self.asked_trailers and self.complete:
            pass  # trailers this response cannot carry (see _trailers_can_go)
        elif kind.startswith("http.response.") and not self.disconnected:
            raise RuntimeError(f"unexpected ASGI message {kind!r} in this state")

    def _start(self, message: Message) -> None:
        """Check the app's head (heads.py) and keep its headers, encoded by the driver."""
        status = int(message["status"])
        headers: Headers = []
        declared: int | None = None
        special, framing = self.SPECIAL, False
        try:
            check_status(status)
            for raw_name, raw_value in message.get("headers", ()):
                name = (raw_name if type(raw_name) is bytes else bytes(raw_name)).lower()
                value = raw_value if type(raw_value) is bytes else bytes(raw_value)
                if TOKEN.fullmatch(name) is None or BAD_VALUE.search(value) is not None:
                    check_header(name, value)  # raises, saying which
                if name in special:
                    framing = True
                    if name == b"content-length":
                        declared = content_length(value, declared)
                    if not self._keep(name, value):
                        continue
                headers.append((name, value))
            if framing:
                self._framing(status, declared, headers)
        except ResponseError:
            self._failing()  # the app may answer again (a 500): nothing of this head stays
            raise
        self.status = status
        self.declared = declared
        self.headers = headers
        self.started = True
        if message.get("trailers"):
            self.asked_trailers = True
            self.trailers = self._trailers_can_go()

    def _body(self, body: bytes, more: bool) -> Awaitable[None] | None:
        """One body message of the app's, within the protocol's and the head's rules; what
        the app must wait for before it goes on, if anything."""
        if self.disconnected:
            self.complete = self.complete or not more
            return None
        fault = None
        if self.head or self.status in NO_BODY_STATUSES:
            body = b""
        elif self.declared is not None:
            self.sent += len(body)
            excess = self.sent - self.declared
            if excess > 0 or (excess < 0 and not more):
                fault = length_fault(self.declared, self.sent, not more)
                if excess > 0:  # what fits goes; the driver ends the exchange after it
                    body, more = body[: len(body) - excess], False
        if not more:
            if self.trailers and fault is None:
                self.awaiting_trailers = True  # the response ends with them
            else:
                self.complete = True
                if self.arrived is not None:
                    self.arrived.set()  # a receive() waiting for the end gets http.disconnect
        pending = self._emit(body, more, fault)
        return pending if fault is None else _then_raise(pending, fault)

    def _ended(self) -> None:
        self.complete = True
        if self.arrived is not None:
            self.arrived.set()  # a receive() waiting for the end gets http.disconnect

    async def _trailers(self, message: Message) -> None:
        """The app's trailers, checked as its head was; the last message ends the response."""
        headers = self.trailer_headers
        if headers is None:
            headers = self.trailer_headers = []
        for raw_name, raw_value in message.get("headers", ()):
            name, value = bytes(raw_name).lower(), bytes(raw_value)
            check_header(name, value)
            headers.append((name, value))
        if message.get("more_trailers", False):
            return
        self.awaiting_trailers = False
        self._ended()
        if not self.disconnected:
            await self._emit_trailers(headers)

    def _trailers_can_go(self) -> bool:
        """Whether this response can carry trailers: one with a body, to a client that said
        ``TE: trailers``."""
        if self.head or self.status in NO_BODY_STATUSES:
            return False
        return any(n == b"te" and b"trailers" in v.lower() for n, v in self.scope["headers"])

    async def _pathsend(self, path: str) -> None:
        """The file at ``path`` as the whole body, each chunk read once the last was
        written (and taken, when the client is slow)."""
        if self.head or self.status in NO_BODY_STATUSES:
            await self.send({"type": "http.response.body"})
            return
        piece = self._path_chunk()
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

    # --- running the app ---

    async def serve(
        self, app: Callable[..., Awaitable[None]], extra: tuple[Any, ...], errors: ErrorLog
    ) -> None:
        """Run ``app`` on this exchange (``extra``: what a Hypercorn-wrapped app takes
        beside scope, receive and send); what it leaves unanswered is answered here."""
        scope = self.scope
        try:
            if extra:
                await app(scope, self.receive, self.send, *extra)
            else:
                await app(scope, self.receive, self.send)
        except asyncio.CancelledError:
            raise
        except ResponseError as error:  # where no ASGI layer of hello's caught it first
            log.error("%s %s: response refused: %s", scope["method"], scope["path"], error)
        except Exception:
            await errors.exception("Error in ASGI Framework")
        if self.disconnected:
            return
        if not self.started:  # the app failed before its response: a 500 says so
            self._failing()
            self.asked_trailers = self.trailers = False
            await self.send({"type": "http.response.start", "status": 500})
            await self.send({"type": "http.response.body"})
        elif not self.complete:
            await self._unfinished()

    # --- what a driver's exchange writes ---

    def _keep(self, name: bytes, value: bytes) -> bool:
        """A header named in SPECIAL: whether it goes out as the app gave it."""
        return True

    def _framing(self, status: int, declared: int | None, headers: Headers) -> None:
        """The head has passed the checks, and named a header in SPECIAL: the protocol's
        own rules on its framing."""

    def _emit(self, body: bytes, more: bool, fault: ResponseError | None) -> Awaitable[None] | None:
        """Write the head (with the first body bytes) and ``body``; ``fault``: the body
        broke its Content-Length, so the protocol ends the exchange after what fits. What
        the app must wait for (the client taking it), if anything."""
        raise NotImplementedError

    async def _emit_trailers(self, headers: Headers) -> None:
        raise NotImplementedError

    async def _continue(self) -> None:
        """Tell the client to send its body (100 Continue)."""
        raise NotImplementedError

    def _taken(self, size: int) -> None:
        """The app took ``size`` body bytes: the driver may read (or let the client send)
        more."""

    async def _unfinished(self) -> None:
        """The app returned without ending its response."""

    def _failing(self) -> None:
        """The app's head was refused, or the app failed before its response: a 500 may
        follow."""

    def _path_chunk(self) -> int:
        return STREAM_CHUNK


async def _then_raise(pending: Awaitable[None] | None, fault: ResponseError) -> None:
    """Wait for what the protocol wrote of a body that broke its Content-Length, then tell
    the app."""
    if pending is not None:
        await pending
    raise fault
