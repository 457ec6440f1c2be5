"""HTTP/2: Hypercorn's protocol on the h2 library, fixed and made lighter.

When a worker is shutting down, Hypercorn closes an HTTP/2 connection (GOAWAY,
then the socket) as soon as its last stream is handed back by the app, while the sending task
may still owe that stream its END_STREAM flag: the final response arrives with all its bytes
but never ends. Here the close waits, briefly, for that last flag to go out.

When a client leaves with responses in flight, Hypercorn leaves their senders waiting for
room that never comes; here they are told the stream is gone.

It makes HTTP/2 lighter: response headers are encoded without HPACK's dynamic table
(h2_headers.py); the frames of one turn of the loop go to the transport in one write, not
through TCPServer's lock and drain() batch by batch; and a body chunk that fits the
flow-control windows and one frame, of a stream with nothing queued, is sent by the app's own
task instead of waiting for Hypercorn's sending task and its priority tree.

It also makes the advertised SETTINGS_MAX_HEADER_LIST_SIZE the limit the HPACK decoder
enforces (Hypercorn's setting never reached it), and answers an HTTP/2 "rapid reset" flood
(CVE-2023-44487: streams opened and at once cancelled by the client, each one still costing
the server a request dispatch) with GOAWAY ENHANCE_YOUR_CALM once a connection resets more
than RESET_LIMIT streams within RESET_WINDOW seconds. Hypercorn alone only caps a
connection's requests (1,000), and the attacker simply reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial
from typing import Any, cast

import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import priority.priority
from h2.connection import ConnectionState as H2State
from h2.stream import StreamState
from hypercorn.events import Closed, Event, Updated
from hypercorn.protocol.events import (
    Body,
    Data,
    EndBody,
    EndData,
    InformationalResponse,
    Request,
    Response,
    StreamClosed,
    Trailers,
)
from hypercorn.protocol.events import Event as StreamEvent
from hypercorn.protocol.h2 import BUFFER_HIGH_WATER, StreamBuffer
from hypercorn.protocol.h2 import H2Protocol as _HypercornH2Protocol
from hypercorn.protocol.http_stream import ASGIHTTPState, HTTPStream
from hypercorn.protocol.ws_stream import WSStream
from hypercorn.typing import (
    AppWrapper,
    ASGIReceiveCallable,
    ASGISendEvent,
    ConnectionState,
    Scope,
    TaskGroup,
    WorkerContext,
)
from hypercorn.utils import filter_pseudo_headers, suppress_body
from hyperframe.frame import GoAwayFrame

from hello.files.reading import read_at
from hello.heads import CONNECTION_SPECIFIC, ResponseError, check_head, check_length
from hello.wire.config import HypercornConfig
from hello.wire.driver import Driver, Served
from hello.wire.h2_headers import UnindexedEncoder
from hello.wire.policy import (
    CONNECTION_WINDOW,
    NO_BODY_STATUSES,
    RETIRE_BY,
    SHUTDOWN_GOAWAY_WAIT,
    STREAM_WINDOW,
    WRITE_HIGH_WATER,
)

log = logging.getLogger("hello")
_REMOTE_OPEN = (StreamState.OPEN, StreamState.HALF_CLOSED_LOCAL)

END_STREAM_WAIT = 1.0  # seconds a closing connection waits for its last END_STREAM
DEFAULT_WINDOW = 65535
RESET_LIMIT = 200  # streams a client may reset within RESET_WINDOW
RESET_WINDOW = 10.0
HeadsEvent = Response | InformationalResponse | Trailers


class H2Protocol(Driver, _HypercornH2Protocol):
    _resets: deque[float] | None = None
    _going_away = False  # GOAWAY sent: the worker is shutting down
    _goaway_due: asyncio.TimerHandle | None = None  # GOAWAY after SHUTDOWN_GOAWAY_WAIT
    _sending: int | None = None  # the stream Hypercorn's sending task is working on
    _write_due = False  # a write of ``_out`` is scheduled
    _requests = 0  # streams taken (Hypercorn's own count is kept at 0: see _create_stream)

    def __init__(
        self,
        served: Served,
        config: HypercornConfig,
        context: WorkerContext,
        task_group: TaskGroup,
        connection_state: ConnectionState,
        ssl: bool,
        client: tuple[str, int] | None,
        server: tuple[str, int] | None,
        send: Callable[[Event], Awaitable[None]],
        writer: asyncio.StreamWriter | None = None,
    ) -> None:
        super().__init__(
            served.wrapped, config, context, task_group, connection_state, ssl, client, server, send
        )
        # Frames go straight to the transport, those of one turn of the loop in one write
        # (see _flush), when hello's connection is the one sending.
        self._writer = writer
        self._out = bytearray()
        self._loop = asyncio.get_running_loop()
        self._lengths: dict[int, list[int]] = {}  # stream: [its Content-Length, bytes given]
        self._window_waiters: dict[int, list[asyncio.Future[None]]] = {}  # path sends
        self._send_event, self.send = self.send, self._send_then_close
        # Hypercorn advertises h2_max_header_list_size but installs it as if already
        # acknowledged, so h2 never hands it to the HPACK decoder, which keeps 64 KiB.
        self.connection.decoder.max_header_list_size = self.config.h2_max_header_list_size
        # Response headers go without HPACK's dynamic table: see h2_headers.py.
        self.connection.encoder = UnindexedEncoder()  # type: ignore[assignment]
        # Request bodies: windows of 64 KiB (HTTP/2's default) cap an upload at 64 KiB per
        # round trip, 640 KB/s over 100 ms. What the app has not taken stays bounded anyway:
        # Hypercorn stops reading the connection while a stream's queue is full.
        codes = h2.settings.SettingCodes
        values = {codes(code): value for code, value in self.connection.local_settings.items()}
        values[codes.INITIAL_WINDOW_SIZE] = STREAM_WINDOW
        self.connection.local_settings = h2.settings.Settings(client=False, initial_values=values)

    @property
    def busy(self) -> bool:
        return not self.idle

    @property
    def awaiting_body(self) -> bool:
        """Whether a stream's request is still open: its client owes body bytes."""
        streams = self.connection.streams.values()
        return any(stream.state_machine.state in _REMOTE_OPEN for stream in streams)

    def release(self) -> None:
        """The connection has ended (tcp.Connection._release): break the cycles this
        protocol and h2's connection each make with their own bound methods (``send`` here,
        h2's frame dispatch table there)."""
        if self._goaway_due is not None:
            self._goaway_due.cancel()
        self.send = self._send_event
        vars(self.connection).pop("_frame_dispatch_table", None)

    async def initiate(
        self, headers: list[tuple[bytes, bytes]] | None = None, settings: bytes | None = None
    ) -> None:
        await super().initiate(headers, settings)
        self.connection.increment_flow_control_window(CONNECTION_WINDOW - DEFAULT_WINDOW)
        await self._flush()

    async def _create_stream(self, request: h2.events.RequestReceived) -> None:
        """Hypercorn's, with two changes. Its HTTP streams offer path send (PathSendStream).
        And Hypercorn retires a connection once its count passes keep_alive_max_requests, by
        h2's close_connection(), which puts h2's state machine in CLOSED: the responses
        still due were refused, 96 of 12,111 requests lost in 40 s under scripts/soak. Here
        hello keeps the count and retires as the ngh2 engine does (tcp.RETIRE_BY): GOAWAY
        once nothing is in flight, or at RETIRE_BY times the limit all the same."""
        method, raw_path = "GET", b"/"
        for name, value in request.headers:
            if name == b":method":
                method = value.decode("ascii").upper()
            elif name == b":path":
                raw_path = value
        stream_id = request.stream_id
        common = (self.config, self.context, self.task_group, self.ssl, self.client)
        if method == "CONNECT":
            self.streams[stream_id] = WSStream(
                self.app, *common, self.server, self.stream_send, stream_id
            )
        else:
            self.streams[stream_id] = PathSendStream(
                partial(_offer_pathsend, self.app),
                *common,
                self.server,
                self.stream_send,
                stream_id,
                self._send_file,
            )
        self.stream_buffers[stream_id] = StreamBuffer(self.context.event_class)
        try:
            self.priority.insert_stream(stream_id)
        except priority.priority.DuplicateStreamError:
            pass  # a PRIORITY frame came before the HEADERS
        else:
            self.priority.block(stream_id)
        await self.streams[stream_id].handle(
            Request(
                stream_id=stream_id,
                headers=filter_pseudo_headers(request.headers),
                http_version="2",
                method=method,
                raw_path=raw_path,
                state=self.connection_state,
            )
        )
        await self.context.mark_request()
        self._requests += 1
        if self._requests >= RETIRE_BY * self.config.keep_alive_max_requests:
            await self._send_goaway()  # this one is answered; the client opens a new connection

    async def _handle_events(self, events: list[h2.events.Event]) -> None:
        resets = sum(isinstance(e, h2.events.StreamReset) and e.remote_reset for e in events)
        if resets and self._too_many_resets(resets):
            log.info(
                "closing an HTTP/2 connection from %s: over %d stream resets in %.0f s",
                self.client[0] if self.client else "?",
                RESET_LIMIT,
                RESET_WINDOW,
            )
            self.connection.close_connection(error_code=h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
            await self._flush()
            await self.send(Closed())
            return
        opened = any(isinstance(e, h2.events.RequestReceived) for e in events)
        if opened and not self._going_away and self.context.terminated.is_set():
            await self._take_before_goaway(events)
            return
        if self._going_away and opened:
            # Streams the client opened before it saw the GOAWAY: refused, so it may send
            # them again on a new connection (Hypercorn reset them with NO_ERROR).
            for event in events:
                if isinstance(event, h2.events.RequestReceived):
                    self.connection.reset_stream(
                        event.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM
                    )
            events = [e for e in events if not isinstance(e, h2.events.RequestReceived)]
            await self._flush()
        if not any(isinstance(event, h2.events.DataReceived) for event in events):
            await super()._handle_events(events)
            return
        # Hypercorn hands DATA to the stream without looking whether it is still there: once
        # the app has answered and the stream is gone, the next DATA frame raised KeyError and
        # ended the connection's task, with every other stream on it (Hypercorn's issue
        # #329). Each event is handled on its own, so the check holds when the frame is
        # reached; such a frame's bytes still count towards the connection's window.
        for event in events:
            if isinstance(event, h2.events.DataReceived) and event.stream_id not in self.streams:
                self.connection.acknowledge_received_data(
                    event.flow_controlled_length, event.stream_id
                )
                continue
            await super()._handle_events([event])

    async def _take_before_goaway(self, events: list[h2.events.Event]) -> None:
        """Requests that arrive once the worker stops but before hello's GOAWAY (a connection
        accepted just before the stop, its first request read before its idle timer woke):
        served, as the ngh2 engine serves them; the GOAWAY goes once they are done (h2's own,
        as Hypercorn closes an idle connection of a stopping worker), naming them, so the
        client sends what follows elsewhere. Hypercorn would reset them with NO_ERROR, which
        httpx does not retry, and a GOAWAY while they are in flight fails them in httpx."""
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                await self._create_stream(event)
                await self.send(Updated(idle=False))
            elif isinstance(event, h2.events.DataReceived) and event.stream_id not in self.streams:
                self.connection.acknowledge_received_data(
                    event.flow_controlled_length, event.stream_id
                )
            else:
                await super()._handle_events([event])

    async def shutting_down(self) -> None:
        """The worker stops (told by the connection's idle timer): GOAWAY now if nothing is
        in flight, else once the last stream ends (Hypercorn's own GOAWAY then) or
        SHUTDOWN_GOAWAY_WAIT from now, whichever comes first: httpx fails a request in flight
        when GOAWAY comes, even one the GOAWAY covers (1 run in 10 of test_hostile's
        generation change lost one so)."""
        if not self.streams:
            await self._send_goaway()
        elif self._goaway_due is None:
            self._goaway_due = self._loop.call_later(
                SHUTDOWN_GOAWAY_WAIT, self.task_group.spawn, self._send_goaway
            )

    async def _send_goaway(self) -> None:
        """Tell the client now (GOAWAY, NO_ERROR, naming the last stream taken), so it sends
        new requests elsewhere while these finish.

        Hypercorn sent nothing until its streams were done: each new request was reset with
        NO_ERROR, which a client may not retry, and the stream limit set to 0, and the
        connection stayed until the graceful timeout: httpx refused to open streams on it
        ("Max outbound streams is 0") for that long, and scripts/soak lost 2,255 uploads in 4
        minutes of reloads once a minute. The frame is written beside h2's state machine,
        which after its own GOAWAY would refuse the responses still due."""
        if self._going_away or self.connection.state_machine.state == H2State.CLOSED:
            return
        self._going_away = True
        frame = GoAwayFrame(0)
        frame.last_stream_id = self.connection.highest_inbound_stream_id
        frame.error_code = h2.errors.ErrorCodes.NO_ERROR
        self._out += frame.serialize()
        await self._flush()

    def _too_many_resets(self, count: int) -> bool:
        now = asyncio.get_running_loop().time()
        if self._resets is None:
            self._resets = deque()
        self._resets.extend([now] * count)
        while self._resets and self._resets[0] < now - RESET_WINDOW:
            self._resets.popleft()
        return len(self._resets) > RESET_LIMIT

    # --- writing: one write per turn of the loop, straight to the transport ---

    async def _flush(self) -> None:
        writer = self._writer
        if writer is None:
            await super()._flush()
            return
        self._out += self.connection.data_to_send()
        if writer.transport.is_closing():
            self._out.clear()  # the client is gone
            return
        if len(self._out) >= WRITE_HIGH_WATER:
            self._write()
        elif self._out and not self._write_due:
            self._write_due = True
            self._loop.call_soon(self._write)
        if writer.transport.get_write_buffer_size() > WRITE_HIGH_WATER:
            try:
                await writer.drain()  # the client is not taking what was sent: wait for it
            except (ConnectionError, RuntimeError):
                await self.handle(Closed())

    def _write(self) -> None:
        self._write_due = False
        data, self._out = self._out, bytearray()
        if data and self._writer is not None and not self._writer.transport.is_closing():
            self._writer.transport.write(data)

    async def _send_then_close(self, event: Event) -> None:
        if isinstance(event, Closed):
            self._write()  # what is due goes out before the connection closes (a GOAWAY)
        await self._send_event(event)

    # --- response bodies: sent at once where nothing of their stream waits ---

    async def _send_data(self, stream_id: int) -> None:
        self._sending = stream_id
        try:
            await super()._send_data(stream_id)
        finally:
            self._sending = None

    def _send_now(self, stream_id: int, data: bytes | None) -> bool:
        """Hypercorn queues each body chunk for its sending task, which sends it on another
        turn of the loop, as the priority tree decides. A chunk that fits the windows and one
        frame, of a stream with nothing queued, is sent here instead (so is the end of a
        stream with nothing queued: ``data`` None); True if it was."""
        buffer = self.stream_buffers.get(stream_id)
        if buffer is None or buffer.buffer or buffer.complete or self._sending == stream_id:
            return False
        connection = self.connection
        try:
            if data is None:
                connection.end_stream(stream_id)
                del self.stream_buffers[stream_id]
                buffer.set_complete()
                with contextlib.suppress(priority.priority.MissingStreamError):
                    self.priority.remove_stream(stream_id)
            elif data:
                room = connection.local_flow_control_window(stream_id)
                if len(data) > min(room, connection.max_outbound_frame_size):
                    return False
                connection.send_data(stream_id, data)
        except h2.exceptions.ProtocolError:
            return False  # Hypercorn's path meets it again, and ends the stream
        return True

    async def handle(self, event: Event) -> None:
        if isinstance(event, Closed):
            self._write()
        await super().handle(event)
        if isinstance(event, Closed):
            self._wake(None)  # path sends waiting for room: the connection is gone
            # Hypercorn's sending task stops here, and the buffers it had yet to send stay
            # open: a response's end (or a body over two frames) waits for room forever,
            # and so its request counts as in flight until shutdown. Close them.
            for buffer in list(self.stream_buffers.values()):
                await buffer.close()

    async def stream_send(self, event: StreamEvent) -> None:
        if isinstance(event, (Response, InformationalResponse, Trailers)):
            event = self._checked(event)
        elif isinstance(event, (Body, Data, EndBody, EndData)) and event.stream_id in self._lengths:
            await self._within_length(event)
        await self._stream_send(event)

    async def _stream_send(self, event: StreamEvent) -> None:
        if not isinstance(event, (Body, Data)) or not event.data:
            await self._queue(event)
            return
        # Hypercorn copies a chunk whole into the stream's queue, and lets the app go on
        # whenever its sending task finds no room to send (a zero window): a client that
        # grants none had every response body queued whole, 450 MB a connection for 100
        # streams of a 4 MiB file. Here a chunk is queued in pieces, each once the one before
        # has gone, no larger than the client's windows allow, and only once they allow any:
        # a client that grants no window holds no copy of the body here.
        view = memoryview(event.data)
        offset, most = 0, max(BUFFER_HIGH_WATER, self.connection.max_outbound_frame_size)
        while offset < len(view):
            room = await self._room(event.stream_id)
            if room is None:
                return  # the stream was reset or the connection closed
            size = min(room, most)
            if offset == 0 and size >= len(view):
                await self._queue(event)  # the whole chunk fits: it goes as it is
                return
            piece = bytes(view[offset : offset + size])
            offset += len(piece)
            await self._queue(replace(event, data=piece))

    async def _room(self, stream_id: int) -> int | None:
        """Bytes the client's windows (the stream's and the connection's) take now, once
        they take any; None once the stream or the connection is gone."""
        while stream_id in self.streams and stream_id in self.stream_buffers:
            if self.closed:
                return None
            try:
                room = self.connection.local_flow_control_window(stream_id)
            except h2.exceptions.ProtocolError:
                return None  # h2 has closed the stream
            if room > 0:
                return room
            await self._window_opened(stream_id)
        return None

    async def _queue(self, event: StreamEvent) -> None:
        if isinstance(event, (Body, Data, EndBody, EndData)) and self._writer is not None:
            data = event.data if isinstance(event, (Body, Data)) else None
            if self._send_now(event.stream_id, data):
                await self._flush()
                return
        if isinstance(event, (Body, Data)):
            buffer = self.stream_buffers.get(event.stream_id)
            if buffer is not None and buffer.buffer:
                await buffer.drain()
        if isinstance(event, StreamClosed) and self.context.terminated.is_set():
            await self._until_stream_ended(event.stream_id)
        await super().stream_send(event)
        if (
            isinstance(event, StreamClosed)
            and not self.streams
            and self._requests >= self.config.keep_alive_max_requests
        ):
            await self._send_goaway()  # retired while nothing is in flight: see RETIRE_BY

    # --- path send: a file read as the client's window opens ---

    async def _send_file(self, stream_id: int, path: str) -> None:
        """The file at ``path`` as the stream's body, read no further than the client's
        windows (the stream's and the connection's) allow, a frame at a time: a client that
        grants no window holds no file data here. Streamed by the app in chunks instead, each
        stream held its queue and the chunk read ahead: 4.9 MB a connection for 100 streams
        of a 4 MiB file (scripts/hostile)."""
        fd = os.open(path, os.O_RDONLY)
        try:
            size, offset = os.fstat(fd).st_size, 0
            while offset < size:
                room = await self._room(stream_id)
                if room is None:
                    return  # the stream was reset, or the connection ended
                want = min(size - offset, room, self.connection.max_outbound_frame_size)
                chunk = await read_at(fd, offset, want)
                if not chunk:
                    raise OSError(f"{path} shrank while it was being sent")
                offset += len(chunk)
                await self.stream_send(Body(stream_id=stream_id, data=chunk))
        finally:
            os.close(fd)

    async def _window_opened(self, stream_id: int) -> None:
        """Until the client grants this stream room, or the stream or the connection ends."""
        waiter = self._loop.create_future()
        self._window_waiters.setdefault(stream_id, []).append(waiter)
        try:
            await waiter
        finally:
            waiting = self._window_waiters.get(stream_id)
            if waiting is not None and waiter in waiting:
                waiting.remove(waiter)
                if not waiting:
                    del self._window_waiters[stream_id]

    def _wake(self, stream_id: int | None) -> None:
        """The senders waiting for room on ``stream_id`` (None: on every stream) look again."""
        if stream_id is None:
            chosen = list(self._window_waiters.values())
        else:
            chosen = [self._window_waiters.get(stream_id, [])]
        for waiting in chosen:
            for waiter in waiting:
                if not waiter.done():
                    waiter.set_result(None)

    async def _window_updated(self, stream_id: int | None) -> None:
        self._wake(stream_id or None)  # 0: the connection's window
        await super()._window_updated(stream_id)

    async def _close_stream(self, stream_id: int) -> None:
        await super()._close_stream(stream_id)
        self._lengths.pop(stream_id, None)  # a body cut short by the client is not held to it
        self._wake(stream_id)

    # --- the app's response, checked as on every path (heads.py) ---

    def _checked(self, event: HeadsEvent) -> HeadsEvent:
        """``event`` without connection-specific headers, which HTTP/2 forbids (h2 would refuse
        the whole head, and Hypercorn then sends nothing: its own 500 says Connection: close);
        ResponseError for a head HTTP cannot carry. A Content-Length is remembered, to be held
        to."""
        headers = [(name.lower(), value) for name, value in event.headers]
        status = event.status_code if isinstance(event, (Response, InformationalResponse)) else 200
        declared = check_head(status, headers)
        if isinstance(event, Response) and declared is not None and status not in NO_BODY_STATUSES:
            stream = self.streams.get(event.stream_id)
            if getattr(stream, "scope", {}).get("method") != "HEAD":
                self._lengths[event.stream_id] = [declared, 0]
        return replace(event, headers=[h for h in headers if h[0] not in CONNECTION_SPECIFIC])

    async def _within_length(self, event: Body | Data | EndBody | EndData) -> None:
        """Count the body against its Content-Length; a body longer or shorter resets the
        stream (a malformed response, RFC 9113 8.1.1) and raises ResponseError."""
        stream_id = event.stream_id
        lengths = self._lengths[stream_id]
        ended = isinstance(event, (EndBody, EndData))
        if isinstance(event, (Body, Data)):
            lengths[1] += len(event.data)
        try:
            check_length(lengths[0], lengths[1], ended)
        except ResponseError:
            del self._lengths[stream_id]
            await self._reset(stream_id)
            raise
        if ended:
            del self._lengths[stream_id]

    async def _reset(self, stream_id: int) -> None:
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self.connection.reset_stream(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
        buffer = self.stream_buffers.pop(stream_id, None)
        if buffer is not None:
            await buffer.close()
        with contextlib.suppress(priority.priority.MissingStreamError):
            self.priority.remove_stream(stream_id)
        await self._flush()

    async def _until_stream_ended(self, stream_id: int) -> None:
        """Wait while the stream's data is all sent but its end is not (the sender removes
        the buffer once END_STREAM is out)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + END_STREAM_WAIT
        turns = 0
        while (buffer := self.stream_buffers.get(stream_id)) is not None and buffer.complete:
            if self.closed or loop.time() > deadline:
                return
            turns += 1
            await asyncio.sleep(0 if turns < 10 else 0.005)


async def _offer_pathsend(
    app: AppWrapper,
    scope: Scope,
    receive: ASGIReceiveCallable,
    send: Any,
    sync_spawn: Any,
    call_soon: Any,
) -> None:
    """The app, told that this server takes ASGI's path send (``http.response.pathsend``)."""
    if scope["type"] == "http":
        scope.setdefault("extensions", {})["http.response.pathsend"] = {}
    await app(scope, receive, send, sync_spawn, call_soon)


class PathSendStream(HTTPStream):
    """Hypercorn's HTTP/2 stream, which also takes ASGI's path send: the protocol's
    ``send_file`` sends the file as the client's window opens (H2Protocol._send_file)."""

    send_file: Callable[[int, str], Awaitable[None]]

    def __init__(self, *args: Any) -> None:
        *hypercorn_args, self.send_file = args
        super().__init__(*hypercorn_args)

    async def app_send(self, message: ASGISendEvent | None) -> None:
        event = cast("dict[str, Any] | None", message)  # Hypercorn's types lack path send
        if (
            event is None
            or event["type"] != "http.response.pathsend"
            or self.state != ASGIHTTPState.RESPONSE
        ):
            await super().app_send(message)
            return
        if not suppress_body(self.scope["method"], int(self.response["status"])):
            await self.send_file(self.stream_id, os.fspath(event["path"]))
        if not self.closed:  # else the client reset the stream, or the connection ended
            await self._send_closed()
