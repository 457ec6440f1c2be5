"""WebSocket over HTTP/2 (RFC 8441): an extended CONNECT stream on http2.py's engine.

The WebSocket itself (handshake checks, framing, the ASGI websocket messages, pings) is
Hypercorn's ``WSStream``, the one its own HTTP/2 and HTTP/1.1 protocols use; this class
carries its events to and from the engine. The frames the client sends are handed to it in
order by one task; their bytes go back to the client's window once it has taken them.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from hypercorn.protocol.events import (
    Body,
    Data,
    EndBody,
    EndData,
    InformationalResponse,
    Request,
    Response,
    StreamClosed,
)
from hypercorn.protocol.events import Event as StreamEvent
from hypercorn.protocol.ws_stream import WSStream

from hello.wire.http2_engines import ErrorCode

if TYPE_CHECKING:
    from hello.wire.http2 import H2Protocol

Item = tuple[bytes, bool] | None  # DATA and whether the client's side ended; None: gone


class WebSocketStream:
    """One extended CONNECT stream, served by Hypercorn's WebSocket stream."""

    def __init__(
        self,
        engine: H2Protocol,
        stream_id: int,
        headers: list[tuple[bytes, bytes]],
        raw_path: bytes,
        extended: bool,
    ) -> None:
        self.engine = engine
        self.stream_id = stream_id
        self.inbox: asyncio.Queue[Item] = asyncio.Queue()
        self.ended = False
        self.ws = WSStream(
            engine.wrapped,
            engine.config,
            engine.context,
            engine.task_group,
            engine.scheme == "https",
            engine.client,
            engine.server,
            self._send,
            stream_id,
        )
        if not extended:  # a CONNECT to a host: no tunnels here
            self._respond(501)
            return
        request = Request(
            stream_id=stream_id,
            headers=headers,
            http_version="2",
            method="CONNECT",
            raw_path=raw_path,
            state=engine.connection_state,
        )
        engine.task_group.spawn(self._pump, request)

    def received(self, data: bytes, end: bool) -> None:
        self.inbox.put_nowait((data, end))

    def gone(self) -> None:
        self.inbox.put_nowait(None)

    async def _pump(self, request: Request) -> None:
        """Hand the WebSocket its request, then what the client sends, in order."""
        ws, engine = self.ws, self.engine
        await ws.handle(request)
        while (item := await self.inbox.get()) is not None:
            data, end = item
            if data:
                await ws.handle(Body(stream_id=self.stream_id, data=data))
                if not engine.closed:
                    engine.conn.acknowledge_received_data(len(data), self.stream_id)
                    engine.want_write()
            if end:
                await ws.handle(EndBody(stream_id=self.stream_id))
        await ws.handle(StreamClosed(stream_id=self.stream_id))

    async def _send(self, event: StreamEvent) -> None:
        engine = self.engine
        if engine.closed or self.ended:
            return
        conn = engine.conn
        try:
            if isinstance(event, (Response, InformationalResponse)):
                headers = [(b":status", b"%d" % event.status_code), *event.headers]
                conn.send_response(self.stream_id, [*headers, *engine.response_headers()])
            elif isinstance(event, (Body, Data)):
                conn.send_data(self.stream_id, event.data)
                engine.want_write()
                if conn.queued_body_size(self.stream_id):
                    await engine.wait_queue(self)
                return
            elif isinstance(event, (EndBody, EndData)):
                self.ended = True
                conn.end_stream(self.stream_id)
            elif isinstance(event, StreamClosed):
                if not self.ended:  # the app is done: so is the stream
                    self.ended = True
                    conn.reset_stream(self.stream_id, ErrorCode.CANCEL)
        except self.engine.errors:
            self.ended = True  # the stream is gone
        engine.want_write()

    def _respond(self, status: int) -> None:
        self.ended = True
        headers = [(b":status", b"%d" % status), *self.engine.response_headers()]
        self.engine.conn.send_response(self.stream_id, headers, end_stream=True)
        self.engine.want_write()
