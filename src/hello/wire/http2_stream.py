"""One HTTP/2 request and its response: the exchange (exchange.py) framed by libnghttp2.

The request body's bytes are given back to the client's flow-control window only once the
app has taken them, so what waits here is bounded by the stream's window
(policy.STREAM_WINDOW), whatever the client sends. The response head goes to the engine with
the first body bytes, so a response in one message is one HEADERS frame with END_STREAM or
HEADERS and DATA. A body chunk stays the app's until the engine has framed it: ``send()``
returns once the stream's queue in libnghttp2 is empty again, so a client that grants no
window holds one chunk per stream, not the whole body.

A path send reads the file as the client's window opens, at most PATH_CHUNK at a time, so a
client that grants no window holds no file data at all, and one that grants some holds no
more than it granted. A body that breaks its Content-Length resets the stream (RFC 9113
8.1.1); connection-specific headers of the app's are dropped (RFC 9113 8.2.2).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable
from typing import Any, Protocol

from hello.files.reading import read_at
from hello.heads import CONNECTION_SPECIFIC, ResponseError
from hello.wire.exchange import Exchange, Headers
from hello.wire.http2_engines import ErrorCode
from hello.wire.policy import NO_BODY_STATUSES

PATH_CHUNK = 16 * 1024  # bytes of a path send's file read at a time, at most
STATUS = {code: b"%d" % code for code in range(100, 600)}


class Engine(Protocol):
    """What a stream needs of its connection (http2.H2Protocol)."""

    conn: Any  # the engine's connection (http2_engines.py)
    errors: type[Exception]  # what its calls raise
    closed: bool

    def want_write(self) -> None: ...

    def response_headers(self) -> tuple[tuple[bytes, bytes], ...]: ...

    def wait_queue(self, stream: Stream) -> asyncio.Future[None]: ...

    def wait_window(self, stream: Stream) -> asyncio.Future[None]: ...


class Stream(Exchange):
    """One request on the connection and the response the app gives it."""

    ended = False  # END_STREAM is queued
    SPECIAL = CONNECTION_SPECIFIC | {b"content-length"}

    def __init__(self, engine: Engine, stream_id: int, scope: dict[str, Any]) -> None:
        super().__init__(scope)
        self.engine = engine
        self.stream_id = stream_id

    # --- the request, from the engine ---

    def received(self, data: bytes, end: bool) -> None:
        """DATA for this stream; what the exchange does not want goes back to the window."""
        if data and not self.add_body(data):
            self.engine.conn.acknowledge_received_data(len(data), self.stream_id)
            self.engine.want_write()
        if end:
            self.end_body()

    def _taken(self, size: int) -> None:
        if size and not self.engine.closed:
            self.engine.conn.acknowledge_received_data(size, self.stream_id)
            self.engine.want_write()

    async def _continue(self) -> None:
        if not self.engine.closed:
            self.engine.conn.send_informational_response(self.stream_id, ((b":status", b"100"),))
            self.engine.want_write()

    # --- the response, from the app ---

    def _keep(self, name: bytes, value: bytes) -> bool:
        return name not in CONNECTION_SPECIFIC

    def _emit(self, body: bytes, more: bool, fault: ResponseError | None) -> Awaitable[None] | None:
        if self.engine.closed:
            return None
        if fault is not None:
            self.reset(ErrorCode.INTERNAL_ERROR)
            return None
        if self.ended:
            return None
        conn = self.engine.conn
        end = not more and not self.awaiting_trailers
        try:
            if not self.head_sent:
                self.head_sent = True
                status = STATUS.get(self.status) or b"%d" % self.status
                headers = [(b":status", status), *self.headers, *self.engine.response_headers()]
                if not body and (end or self.head or self.status in NO_BODY_STATUSES):
                    # No body will follow: the head ends the stream (or its trailers do).
                    self.ended = end
                    conn.send_response(self.stream_id, headers, end_stream=end)
                    self.engine.want_write()
                    return None
                conn.send_response(self.stream_id, headers)
            if body:
                conn.send_data(self.stream_id, body, end_stream=end)
            elif end:
                conn.end_stream(self.stream_id)
            self.ended = end
        except self.engine.errors:
            self.gone()  # the stream was reset, or the connection ended
            return None
        self.engine.want_write()
        if body and more and conn.queued_body_size(self.stream_id):
            return self.engine.wait_queue(self)
        return None

    async def _emit_trailers(self, headers: Headers) -> None:
        if self.engine.closed:
            return
        try:
            self.engine.conn.send_trailers(self.stream_id, headers)
        except self.engine.errors:
            return  # the stream is gone
        self.ended = True
        self.engine.want_write()

    async def _unfinished(self) -> None:
        self.reset(ErrorCode.INTERNAL_ERROR)  # it returned without ending its response

    async def _pathsend(self, path: str) -> None:
        """The file at ``path`` as the whole body, read only as far as the window allows."""
        if self.head or self.status in NO_BODY_STATUSES:
            await self.send({"type": "http.response.body"})
            return
        fd = os.open(path, os.O_RDONLY)
        try:
            size, offset = os.fstat(fd).st_size, 0
            while True:
                room = self._room()
                if room is None:  # the stream or the connection is gone
                    self._ended()
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
                await self.send(
                    {"type": "http.response.body", "body": chunk, "more_body": offset < size}
                )
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
            room: int = min(conn.stream_remote_window_size(self.stream_id), conn.remote_window_size)
        except self.engine.errors:
            return None
        return room

    def reset(self, code: int) -> None:
        """End the stream now with RST_STREAM ``code``."""
        self.complete = True
        if not self.engine.closed:
            try:
                self.engine.conn.reset_stream(self.stream_id, code)
            except self.engine.errors:
                pass
            self.engine.want_write()
        self.gone()
