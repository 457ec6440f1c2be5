"""One HTTP/2 request and its response, between http2.py's engine and the ASGI app.

The request body is queued for ``receive()`` as DATA frames arrive; its bytes are given back
to the client's flow-control window only once the app has taken them, so what waits here is
bounded by the stream's window (http2.STREAM_WINDOW), whatever the client sends. The response
head goes to the engine with the first body bytes, so a response in one message is one
HEADERS frame with END_STREAM or HEADERS and DATA. A body chunk stays the app's until the
engine has framed it: ``send()`` returns once the stream's queue in libnghttp2 is empty
again, so a client that grants no window holds one chunk per stream, not the whole body.

ASGI's path send (``http.response.pathsend``) is offered: the file is read as the client's
window opens, at most PATH_CHUNK at a time, so a client that grants no window holds no file
data at all, and one that grants some holds no more than it granted.

The app's head is checked before any of it goes out (heads.py), as on every path; a body
longer or shorter than its Content-Length resets the stream (RFC 9113 8.1.1).
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from typing import Any, Protocol

import ngh2

from hello.files.reading import read_at
from hello.heads import (
    BAD_VALUE,
    CONNECTION_SPECIFIC,
    TOKEN,
    ResponseError,
    check_header,
    check_length,
    check_status,
    content_length,
)
from hello.wire.policy import NO_BODY_STATUSES

PATH_CHUNK = 16 * 1024  # bytes of a path send's file read at a time, at most
STATUS = {code: b"%d" % code for code in range(100, 600)}
Message = dict[str, Any]


class Engine(Protocol):
    """What a stream needs of its connection (http2.H2Protocol)."""

    conn: ngh2.Connection
    closed: bool

    def want_write(self) -> None: ...

    def response_headers(self) -> tuple[tuple[bytes, bytes], ...]: ...

    def wait_queue(self, stream: Stream) -> asyncio.Future[None]: ...

    def wait_window(self, stream: Stream) -> asyncio.Future[None]: ...


class Stream:
    """One request on the connection and the response the app gives it."""

    # Defaults on the class: a request sets only what differs (most requests: nothing).
    more_body = True  # until the request's END_STREAM
    expect_continue = False  # the client waits for 100 Continue before sending the body
    body_given = False  # the app has had all of it
    unacknowledged = 0  # body bytes received and not yet given back to the window
    disconnected = False  # reset by the client, or the connection is gone
    started = False  # the app gave its response head
    head_sent = False
    complete = False  # the app gave the response's end
    ended = False  # END_STREAM is queued
    trailers = False  # the app will send trailers (and the client accepts them)
    status = 200
    declared: int | None = None  # the app's Content-Length
    sent = 0
    arrived: asyncio.Event | None = None  # made when receive() must wait

    def __init__(self, engine: Engine, stream_id: int, scope: dict[str, Any]) -> None:
        self.engine = engine
        self.stream_id = stream_id
        self.scope = scope
        self.head = scope["method"] == "HEAD"
        self.body: deque[bytes] = deque()
        self.headers: list[tuple[bytes, bytes]] = []

    # --- the request, from the engine ---

    def add_body(self, data: bytes, end: bool) -> None:
        if data:
            if self.complete or self.disconnected:  # answered: read, given back, dropped
                self.engine.conn.acknowledge_received_data(len(data), self.stream_id)
                self.engine.want_write()
            else:
                self.body.append(data)
                self.unacknowledged += len(data)
        if end:
            self.more_body = False
        self._wake()

    def end_body(self) -> None:
        self.more_body = False
        self._wake()

    def gone(self) -> None:
        """The client reset the stream, or the connection ended."""
        self.disconnected = True
        self._wake()

    def _wake(self) -> None:
        if self.arrived is not None:
            self.arrived.set()

    # --- the request, for the app ---

    async def receive(self) -> Message:
        if self.expect_continue:
            self._continue()
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
        taken, self.unacknowledged = self.unacknowledged, 0
        if taken and not self.engine.closed:
            self.engine.conn.acknowledge_received_data(taken, self.stream_id)
            self.engine.want_write()
        return {"type": "http.request", "body": body, "more_body": self.more_body}

    def _continue(self) -> None:
        """``Expect: 100-continue``: the app asks for the body, so the client may send it
        (RFC 9110 10.1.1). Said only now, so an app that answers without reading (401, 413)
        spares the client the upload, as on HTTP/1.1."""
        self.expect_continue = False
        if not (self.started or self.disconnected or self.engine.closed) and self.more_body:
            self.engine.conn.send_informational_response(self.stream_id, ((b":status", b"100"),))
            self.engine.want_write()

    # --- the response, from the app ---

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.body" and self.started and not self.complete:
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if self._body(body if type(body) is bytes else bytes(body), bool(more)):
                await self.engine.wait_queue(self)
        elif kind == "http.response.pathsend" and self.started and not self.complete:
            await self._pathsend(os.fspath(message["path"]))
        elif kind == "http.response.start" and not self.started:
            status = int(message["status"])
            self._start(status, message.get("headers", ()))
            self.status = status
            self.started = True
            self.trailers = bool(message.get("trailers")) and self._accepts_trailers()
        elif kind == "http.response.trailers" and self.complete and self.trailers:
            if not message.get("more_trailers", False):
                self.trailers = False
                headers = [(bytes(n).lower(), bytes(v)) for n, v in message.get("headers", ())]
                for name, value in headers:
                    check_header(name, value)
                if not self.disconnected and not self.engine.closed:
                    try:
                        self.engine.conn.send_trailers(self.stream_id, headers)
                    except ngh2.NGH2Error:
                        return  # the stream is gone
                    self.engine.want_write()
        elif kind.startswith("http.response.") and not (self.disconnected or self.complete):
            raise RuntimeError(f"unexpected ASGI message {kind!r} in this state")

    def _body(self, body: bytes, more: bool) -> bool:
        """Hand a body chunk to the engine; True if the app must wait for it to be framed."""
        if self.disconnected or self.engine.closed:
            self.complete = self.complete or not more
            return False
        fault = None
        if self.head or self.status in NO_BODY_STATUSES:
            body = b""
        elif self.declared is not None:
            self.sent += len(body)
            try:
                check_length(self.declared, self.sent, not more)
            except ResponseError as error:
                fault = error
        if not more:
            self.complete = True
            self._wake()  # a receive() waiting for the end gets http.disconnect
        conn = self.engine.conn
        if fault is not None:
            self.reset(ngh2.ErrorCode.INTERNAL_ERROR)
            raise fault
        if self.ended:
            return False
        end = not more and not self.trailers
        try:
            if not self.head_sent:
                self.head_sent = True
                status = STATUS.get(self.status) or b"%d" % self.status
                headers = [(b":status", status), *self.headers, *self.engine.response_headers()]
                if not body and (end or self.head or self.status in NO_BODY_STATUSES):
                    # No body will follow: the head ends the stream (or its trailers do).
                    self.ended = not self.trailers
                    conn.send_response(self.stream_id, headers, end_stream=self.ended)
                    self.engine.want_write()
                    return False
                conn.send_response(self.stream_id, headers)
            if body:
                conn.send_data(self.stream_id, body, end_stream=end)
            elif end:
                conn.end_stream(self.stream_id)
            self.ended = end
        except ngh2.NGH2Error:
            self.gone()  # the stream was reset, or the connection ended
            return False
        self.engine.want_write()
        return bool(body and more and conn.queued_body_size(self.stream_id))

    async def _pathsend(self, path: str) -> None:
        """The file at ``path`` as the whole body, read only as far as the window allows."""
        if self.head or self.status in NO_BODY_STATUSES:
            self._body(b"", False)
            return
        fd = os.open(path, os.O_RDONLY)
        try:
            size, offset = os.fstat(fd).st_size, 0
            while True:
                room = self._room()
                if room is None:  # the stream or the connection is gone
                    self.complete = True
                    return
                want = min(PATH_CHUNK, size - offset)
                if want and room <= 0:
                    if not self.head_sent:
                        self._body(b"", True)  # the head goes now; HEADERS need no window
                    await self.engine.wait_window(self)
                    continue
                chunk = await read_at(fd, offset, min(want, room)) if want else b""
                if want and not chunk:
                    raise OSError(f"{path} shrank while it was being sent")
                offset += len(chunk)
                if self._body(chunk, offset < size):
                    await self.engine.wait_queue(self)
                if offset >= size:
                    return
        finally:
            os.close(fd)

    def _room(self) -> int | None:
        """Bytes the client's windows (the stream's and the connection's) take now; None
        once the stream or the connection is gone."""
        if self.disconnected or self.engine.closed:
            return None
        conn = self.engine.conn
        try:
            return min(conn.stream_remote_window_size(self.stream_id), conn.remote_window_size)
        except ngh2.NGH2Error:
            return None

    def reset(self, code: int) -> None:
        """End the stream now with RST_STREAM ``code``."""
        self.complete = True
        if not self.engine.closed:
            try:
                self.engine.conn.reset_stream(self.stream_id, code)
            except ngh2.NGH2Error:
                pass
            self.engine.want_write()
        self.gone()

    def _start(self, status: int, raw: Any) -> None:
        """Check the app's head (heads.py); remember its headers, without those HTTP/2
        forbids (h2 refused the whole head for them), and its Content-Length."""
        check_status(status)
        headers = self.headers
        declared: int | None = None
        for raw_name, raw_value in raw:
            name = (raw_name if type(raw_name) is bytes else bytes(raw_name)).lower()
            value = raw_value if type(raw_value) is bytes else bytes(raw_value)
            if TOKEN.fullmatch(name) is None or BAD_VALUE.search(value) is not None:
                check_header(name, value)  # raises, saying which
            if name in CONNECTION_SPECIFIC:
                continue
            if name == b"content-length":
                declared = content_length(value, declared)
            headers.append((name, value))
        if declared is not None and not self.head and status not in NO_BODY_STATUSES:
            self.declared = declared

    def _accepts_trailers(self) -> bool:
        return any(n == b"te" and b"trailers" in v.lower() for n, v in self.scope["headers"])
