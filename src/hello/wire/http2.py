"""HTTP/2: one driver over an engine, libnghttp2 (ngh2, the engine behind curl's and Apache's
HTTP/2) or, where ngh2 cannot be imported or ``--http2-engine h2`` asks, the pure-Python h2
behind ngh2's interface (h2_engine.py; http2_engines.py chooses).

Hypercorn's HTTP/2 protocol runs framing, HPACK and flow control in h2 and each request through
its generic stream layer: about 100 µs of server time an exchange, where libnghttp2 takes
about 3. This protocol has the interface of Hypercorn's protocols, built for a connection that
negotiated h2 (TLS ALPN, h2c by Upgrade or with prior knowledge), and speaks ASGI to the app
directly through the exchange (exchange.py, framed for HTTP/2 in http2_stream.py): each
request is a ``Stream`` and a task running the app; the connection is read in
``data_received`` (reading.py), and what the engine has to send goes to the transport once
per turn of the loop.

What the engine does itself: every check RFC 9113 asks of frames and of requests
(pseudo-headers, connection-specific fields, Content-Length against DATA), HPACK with its
limits, SETTINGS and PING answers, and the defences against floods of resets (CVE-2023-44487),
SETTINGS, PINGs and CONTINUATIONs, each answered with GOAWAY. What is hello's: the windows
(a request body's bytes go back to the client's window only once the app has read them),
431 for a head over ``--max-header-size``, the response checks of heads.py, GOAWAY at a
worker's shutdown and after ``keep_alive_max_requests`` streams, the idle timeout, and
WebSocket over HTTP/2 (RFC 8441, through Hypercorn's WebSocket stream: ws.py).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.typing import ConnectionState, TaskGroup, WorkerContext

from hello.heads import CONNECTION_SPECIFIC
from hello.wire.config import HypercornConfig
from hello.wire.driver import Driver, Served
from hello.wire.exchange import http_scope
from hello.wire.http2_engines import Engine, ErrorCode, SettingCodes
from hello.wire.http2_gate import FrameGate
from hello.wire.http2_stream import Stream
from hello.wire.policy import (
    CONNECTION_WINDOW,
    DRAIN_IDLE,
    IDLE_CHECK,
    RETIRE_BY,
    SHUTDOWN_GOAWAY_WAIT,
    STREAM_WINDOW,
    WRITE_HIGH_WATER,
)
from hello.wire.reading import Meter, Reading
from hello.wire.ws import WebSocketStream

log = logging.getLogger("hello")

# Stream resets a client may send: a burst, then so many a second (libnghttp2's token
# bucket; past it, GOAWAY). Rapid reset (CVE-2023-44487) is thousands a second.
RESET_BURST, RESET_RATE = 200, 20
UPGRADE_DROPPED = CONNECTION_SPECIFIC | {b"http2-settings", b"te"}
METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")}


class H2Protocol(Driver):
    """Hypercorn's HTTP/2 protocol interface, on libnghttp2 or h2."""

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
        *,
        engine: Engine,
    ) -> None:
        # The app under the stack's outer layers and HSTS, whose work this protocol does:
        # the 431 of a head over --max-header-size, HSTS's header (stack/build.py).
        stack = served.stack
        self.asgi = stack.http2
        self.head_limit = stack.max_header_size
        self.config = config
        self.context = context
        self.task_group = task_group
        self.connection_state = connection_state
        self.scheme = "https" if ssl else "http"
        self.hsts = (stack.hsts,) if stack.hsts is not None and ssl else ()
        self.client = client
        self.server = server
        self.send = send
        self.writer = writer
        self.wrapped = served.wrapped  # for WebSocket streams: Hypercorn's (ws.py)
        self.transport: asyncio.WriteTransport | None = (
            writer.transport if writer is not None else None
        )
        self.reading: Reading | None = None
        self.engine = engine
        self.errors = engine.error
        self.conn: Any = engine.connect(config.h2_max_header_list_size, (RESET_BURST, RESET_RATE))
        self.local_settings = {
            SettingCodes.MAX_CONCURRENT_STREAMS: config.h2_max_concurrent_streams,
            SettingCodes.MAX_HEADER_LIST_SIZE: config.h2_max_header_list_size,
            SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
            SettingCodes.ENABLE_CONNECT_PROTOCOL: 1,
        }
        self.gate = FrameGate(self)
        self.client_reset: set[int] = set()  # streams the client reset, until they close
        self.streams: dict[int, Stream] = {}
        self.sockets: dict[int, WebSocketStream] = {}
        self.waiting: dict[int, asyncio.Future[None]] = {}  # senders until their queue empties
        self.windows: dict[int, asyncio.Future[None]] = {}  # path sends until a window opens
        self.closed = False
        self.closing = False  # the final GOAWAY is queued: close once it is written
        self.failed = False  # ended by hello for a violation it found
        self.going_away = False  # GOAWAY sent or received: no new streams
        self.client_went_away = False  # the client's GOAWAY arrived
        self.write_due = False
        self.write_blocked = False
        self.requests = 0
        self.resets = 0  # streams the client has reset
        self.loop = asyncio.get_running_loop()
        self.idle_since: float | None = None
        self.terminated_at = 0.0  # loop time the worker's shutdown was first seen
        self.timer: asyncio.TimerHandle | None = None

    # --- what tcp.py asks ---

    @property
    def busy(self) -> bool:
        return bool(self.streams or self.sockets)

    @property
    def idle(self) -> bool:
        return not self.busy

    @property
    def awaiting_body(self) -> bool:
        for stream in self.streams.values():  # asked on every read: no generator
            if stream.more_body:
                return True
        return False

    @property
    def lingers(self) -> bool:
        """Whether the connection waits out DRAIN_IDLE after hello's GOAWAY (not the
        client's: a client that said GOAWAY is not sending again)."""
        return self.going_away and not self.client_went_away and not self.closing

    async def shutting_down(self) -> None:
        """The worker stops (told by the connection's idle timer): GOAWAY now if nothing is
        in flight, else as the last stream ends (``_stream_closed``), or SHUTDOWN_GOAWAY_WAIT
        from now all the same (``_check``). httpx fails a request in flight when GOAWAY
        comes, even one the GOAWAY covers: a connection accepted just before the stop, whose
        first request had arrived, lost that request 1 run in 10 of test_hostile's
        generation change."""
        if not self.streams and not self.sockets:
            self._go_away()
        else:
            self.terminated_at = self.terminated_at or self.loop.time()

    # --- Hypercorn's protocol interface ---

    async def initiate(
        self, headers: list[tuple[bytes, bytes]] | None = None, settings: bytes | None = None
    ) -> None:
        if settings is None:
            self.conn.initiate_connection(self.local_settings)
        else:  # h2c by Upgrade: the HTTP/1.1 request is stream 1
            payload = base64.urlsafe_b64decode(settings + b"=" * (-len(settings) % 4))
            method = dict(headers or ()).get(b":method", b"")
            self.conn.initiate_upgrade(
                payload, local_settings=self.local_settings, head_request=method == b"HEAD"
            )
        self.conn.set_local_window_size(CONNECTION_WINDOW)
        if headers is not None:
            kept = [(n, v) for n, v in headers if n.lower() not in UPGRADE_DROPPED]
            self.gate.highest = 1
            self._request(1, kept, True)
        self._handle(self.conn.events())
        self._write()

    async def handle(self, event: Event) -> None:
        if isinstance(event, RawData):
            self.feed(event.data)
        elif isinstance(event, Closed):
            self._lost()

    def release(self) -> None:
        """The connection has ended (tcp.Connection._release): break the cycles with
        the frame gate and the reader (nothing feeds them once the connection is closed), and
        the engine's own. Called once."""
        del self.gate
        self.reading = None
        self.engine.release(self.conn)

    async def read_directly(
        self, transport: asyncio.Transport, reader: asyncio.StreamReader, meter: Meter | None
    ) -> asyncio.StreamReader:
        """From now on, read the connection in ``data_received`` (reading.py), after what
        ``reader`` holds; the reader returned learns of the connection's end."""
        if transport.is_closing() or reader.at_eof():
            return reader
        self.reading = reading = Reading(self, transport, meter)
        reading.resumed = self._resumed
        transport.set_protocol(reading)
        # The transport pauses writing past this (asyncio's TLS transport: 512 KiB), and the
        # engine keeps the rest, in the app's own chunks.
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        self.transport = transport
        reader.feed_eof()
        early = await reader.read()
        if early:
            reading.data_received(early)
        return reading.reader

    def feed(self, data: bytes) -> None:
        if not self.closed:
            self.gate.feed(data)
            self.want_write()

    # --- http2_gate.Engine ---

    def engine_feed(self, data: bytes | memoryview) -> bool:
        """Hand ``data`` to the engine and act on what it makes of it; False once the
        connection is ending."""
        if self.closed or self.closing:
            return False
        try:
            self.conn.receive_data(data)
        except self.engine.state_error:
            if self.lingers:  # after hello's GOAWAY (DRAIN_IDLE): what comes is dropped
                return False
            raise
        except self.engine.error as error:
            # A flood or a fatal violation: the engine's GOAWAY, where it made one, then
            # the close.
            log.info("closing an HTTP/2 connection from %s: %s", self._peer(), error)
            self._handle(self.conn.events())
            self._close_now()
            return False
        self._handle(self.conn.events())
        return not self.closing

    def is_open(self, stream_id: int) -> bool:
        return stream_id in self.streams or stream_id in self.sockets

    def too_large(self, stream_id: int) -> None:
        """A request head too large to decode: 431, then GOAWAY and the close."""
        log.info("closing an HTTP/2 connection from %s: a request head over 64 KiB", self._peer())
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(self.conn.data_to_send())
            # HEADERS, END_STREAM|END_HEADERS: ":status: 431", a literal with the name of
            # HPACK's static entry 8 (the engine has no stream to encode it for).
            block = b"\x08\x03431"
            head = len(block).to_bytes(3, "big") + b"\x01\x05" + stream_id.to_bytes(4, "big")
            transport.write(head + block)
        self.fail(ErrorCode.NO_ERROR)

    def fail(self, code: int, why: str = "") -> None:
        """End the connection for a violation the gate found: GOAWAY ``code``, then close."""
        if not self.failed and why:
            log.info("closing an HTTP/2 connection from %s: %s", self._peer(), why)
        self.failed = True
        try:
            self.conn.terminate_connection(code)
        except self.engine.error:
            pass
        self._close_now()

    # --- the engine's events ---

    def _handle(self, events: list[Any]) -> None:
        (
            DataReceived,
            RequestReceived,
            StreamClosed,
            StreamReset,
            TrailersReceived,
            ConnectionClosed,
            WindowUpdated,
            SettingsReceived,
            GoAwayReceived,
        ) = self.engine.events
        for event in events:
            if isinstance(event, DataReceived):
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream.received(event.data, event.end_stream)
                elif event.stream_id in self.sockets:
                    self.sockets[event.stream_id].received(event.data, event.end_stream)
                elif event.data:  # for a stream already answered: its bytes are given back
                    self.conn.acknowledge_received_data(len(event.data), event.stream_id)
            elif isinstance(event, RequestReceived):
                self._request(event.stream_id, event.headers, event.end_stream)
            elif isinstance(event, StreamClosed):
                self._stream_closed(event.stream_id, event.error_code)
            elif isinstance(event, StreamReset):
                self._stream_reset(event.stream_id)
            elif isinstance(event, TrailersReceived):
                if (stream := self.streams.get(event.stream_id)) is not None:
                    stream.end_body()
                elif event.stream_id in self.sockets:
                    self.sockets[event.stream_id].received(b"", True)
            elif isinstance(event, ConnectionClosed):
                if not event.error_code and self.lingers:
                    # libnghttp2 is done once its GOAWAY is out and no stream is open; the
                    # transport stays DRAIN_IDLE longer all the same (see DRAIN_IDLE).
                    self.idle_since = self.loop.time()
                    continue
                self.closing = True
                if event.error_code and not self.failed:
                    # The engine ended it: a flood (resets, SETTINGS, PINGs...) or a
                    # violation. Its GOAWAY is written before the close.
                    code = _code_name(event.error_code)
                    reason = event.debug_data.decode("utf-8", "replace") or (
                        f"{self.resets} streams reset by the client"
                        if self.resets >= RESET_BURST
                        else "no reason given"
                    )
                    log.info(
                        "closing an HTTP/2 connection from %s: GOAWAY %s (%s)",
                        self._peer(),
                        code,
                        reason,
                    )
            elif isinstance(event, WindowUpdated):
                self._window_opened(event.stream_id)
            elif isinstance(event, SettingsReceived):
                self._window_opened(0)  # SETTINGS_INITIAL_WINDOW_SIZE may have grown
            elif isinstance(event, GoAwayReceived):
                self.going_away = self.client_went_away = True

    def _request(self, stream_id: int, headers: Any, end: bool) -> None:
        # After hello's GOAWAY the engine hands over no stream it did not name as taken.
        method = path = b""
        protocol: bytes | None = None
        host: bytes | None = None
        expect: bytes | None = None
        fields: list[tuple[bytes, bytes]] = [(b"host", b"")]
        size = 0
        for name, value in headers:
            if name[0] == 58:  # b":"
                if name == b":method":
                    method = value
                elif name == b":path":
                    path = value
                elif name == b":authority":
                    host = value
                elif name == b":protocol":
                    protocol = value
            else:
                if name == b"host":
                    host = host if host is not None else value
                    continue
                if name == b"expect":
                    expect = value
                fields.append((name, value))
                size += len(name) + len(value) + 4
        fields[0] = (b"host", host or b"")
        raw_path = path.partition(b"?")[0]
        self.requests += 1
        if self.requests >= RETIRE_BY * self.config.keep_alive_max_requests:
            self._go_away()  # this one is answered; the client opens a new connection
        if self.idle_since is not None or self.requests == 1:
            self.idle_since = None
            if self.requests == 1:
                self.task_group.spawn(self.send, Updated(idle=False))
                self._arm_timer()
        if method == b"CONNECT":
            self.sockets[stream_id] = WebSocketStream(
                self, stream_id, fields, raw_path, protocol is not None
            )
            return
        scope = http_scope(
            "2",
            METHODS.get(method) or method.decode("ascii"),
            self.scheme,
            path,
            fields,
            self.client,
            self.server,
            self.config.root_path,
            self.connection_state.copy(),
        )
        stream = Stream(self, stream_id, scope)
        if end:
            stream.more_body = False
        elif expect is not None and expect.lower() == b"100-continue":
            stream.expect_continue = True
        self.streams[stream_id] = stream
        app = too_large if size + len(raw_path) > self.head_limit else self.asgi
        self.task_group.spawn(stream.serve, app, (), self.config.log)

    def _stream_reset(self, stream_id: int) -> None:
        self.client_reset.add(stream_id)
        self.resets += 1
        if (stream := self.streams.get(stream_id)) is not None:
            stream.gone()
        elif (socket := self.sockets.get(stream_id)) is not None:
            socket.gone()
        self._wake(stream_id)

    def _stream_closed(self, stream_id: int, code: int) -> None:
        # Closed by the client (its END_STREAM and ours, or its reset): no frame may follow.
        # Reset by this side: frames the client sent before it knew are let through.
        by_client = stream_id in self.client_reset or not code
        self.client_reset.discard(stream_id)
        self.gate.stream_closed(stream_id, by_client)
        stream = self.streams.pop(stream_id, None)
        if stream is not None:
            if not stream.complete or stream.more_body:
                stream.gone()
            if stream.buffered:  # the connection's window gets them back
                self.conn.acknowledge_received_data(stream.buffered, stream_id)
                stream.buffered = 0
        elif (socket := self.sockets.pop(stream_id, None)) is not None:
            socket.gone()
        self._wake(stream_id)
        if not self.streams and not self.sockets:
            self.idle_since = self.loop.time()
            if not self.going_away and (
                self.requests >= self.config.keep_alive_max_requests
                or self.context.terminated.is_set()
            ):
                self._go_away()  # retired while nothing is in flight: see RETIRE_BY

    # --- writing: what the engine has to send, once per turn of the loop ---

    def want_write(self) -> None:
        if not self.write_due and not self.closed:
            self.write_due = True
            self.loop.call_soon(self._write)

    def _write(self) -> None:
        self.write_due = False
        transport = self.transport
        if self.closed:
            return
        if transport is None:  # no transport was handed over (a test harness): send() writes
            data = self.conn.data_to_send()
            if data:
                self.task_group.spawn(self.send, RawData(data))
        else:
            if transport.is_closing():
                return
            while not self._full(transport):
                data = self.conn.data_to_send(WRITE_HIGH_WATER)
                if not data:
                    break
                transport.write(data)
        self._handle(self.conn.events())
        for stream_id in list(self.waiting):
            if not self.conn.queued_body_size(stream_id):
                self._wake(stream_id)
        if self.closing:
            self._close_now()

    def wait_queue(self, stream: Stream | WebSocketStream) -> asyncio.Future[None]:
        """A future done once ``stream``'s queued body is framed (or the stream is gone)."""
        waiter = self.waiting.get(stream.stream_id)
        if waiter is None:
            waiter = self.waiting[stream.stream_id] = self.loop.create_future()
        return waiter

    def wait_window(self, stream: Stream) -> asyncio.Future[None]:
        """A future done once the client opens a window (or the stream is gone)."""
        waiter = self.windows.get(stream.stream_id)
        if waiter is None:
            waiter = self.windows[stream.stream_id] = self.loop.create_future()
        return waiter

    def _window_opened(self, stream_id: int) -> None:
        """``stream_id``'s window grew (or the stream is gone): its path send goes on; 0: the
        connection's (or every stream's) did, and all of them do."""
        if not self.windows:
            return  # no path send waits (the usual case: a dict check per event)
        waiters: list[asyncio.Future[None] | None]
        if stream_id == 0:
            waiters, self.windows = list(self.windows.values()), {}
        else:
            waiters = [self.windows.pop(stream_id, None)]
        for waiter in waiters:
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def _wake(self, stream_id: int) -> None:
        """``stream_id``'s queue is empty, or the stream is gone: its waiting sender goes on."""
        waiter = self.waiting.pop(stream_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._window_opened(stream_id)

    def _full(self, transport: asyncio.WriteTransport) -> bool:
        """Whether the transport has paused writing (the client is not taking what was
        sent); if so, the engine is asked again once it resumes."""
        if self.reading is not None:
            full = self.reading.writable is not None
        else:
            full = transport.get_write_buffer_size() > transport.get_write_buffer_limits()[1]
        if full and not self.write_blocked:
            self.write_blocked = True
            if self.reading is None and self.writer is not None:
                self.task_group.spawn(self._drained)
        return full

    async def _drained(self) -> None:
        assert self.writer is not None
        try:
            await self.writer.drain()
        except (ConnectionError, RuntimeError):
            self._lost()
            return
        self._resumed()

    def _resumed(self) -> None:
        if self.write_blocked:
            self.write_blocked = False
            self.want_write()

    def response_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """The headers the server adds to every response (date, server, alt-svc, HSTS)."""
        headers = self.config.response_fields()
        return headers + self.hsts if self.hsts else headers

    # --- the connection's end ---

    def _go_away(self) -> None:
        """No new streams: GOAWAY naming the last stream taken; close DRAIN_IDLE after those
        are done."""
        if self.going_away or self.closed:
            return
        self.going_away = True
        try:
            self.conn.send_goaway(ErrorCode.NO_ERROR)
        except self.engine.error:
            pass
        if self.idle_since is not None:
            self.idle_since = self.loop.time()  # DRAIN_IDLE counts from the GOAWAY
        self.want_write()

    def _finish(self) -> None:
        """All streams are done: the final GOAWAY, then the close."""
        try:
            self.conn.terminate_connection(ErrorCode.NO_ERROR)
        except self.engine.error:
            pass
        self.closing = True
        self.want_write()

    def _close_now(self) -> None:
        if self.closed:
            return
        transport = self.transport
        if transport is not None and not transport.is_closing():
            try:
                data = self.conn.data_to_send()
            except self.engine.error:
                data = b""
            if data:
                transport.write(data)
        self._lost()
        self.task_group.spawn(self.send, Closed())

    def _lost(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        for stream in self.streams.values():
            stream.gone()
        for socket in self.sockets.values():
            socket.gone()
        for stream_id in list(self.waiting):
            self._wake(stream_id)
        self._window_opened(0)

    def _arm_timer(self) -> None:
        self.timer = self.loop.call_later(IDLE_CHECK, self._check)

    def _check(self) -> None:
        """Every IDLE_CHECK: GOAWAY once the worker shuts down, and the idle timeout."""
        self.timer = None
        if self.closed:
            return
        if self.context.terminated.is_set() and not self.going_away:
            # The worker stops: GOAWAY once nothing is in flight (see RETIRE_BY), or after
            # SHUTDOWN_GOAWAY_WAIT all the same, so the client moves on.
            now = self.loop.time()
            self.terminated_at = self.terminated_at or now
            if not self.streams or now - self.terminated_at >= SHUTDOWN_GOAWAY_WAIT:
                self._go_away()
        idle = self.idle_since is not None and self.loop.time() - self.idle_since
        if idle and not self.closing:
            limit = DRAIN_IDLE if self.going_away else self.config.keep_alive_timeout
            if idle >= limit:
                self.going_away = True
                self._finish()
        self._arm_timer()

    def _peer(self) -> str:
        return self.client[0] if self.client else "?"


def _code_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return hex(code)


async def too_large(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The 431 hello's outer layers would give a head over --max-header-size
    (stack/limits.py), for a request this protocol hands the app under them."""
    headers = [(b"content-type", b"text/plain; charset=utf-8")]
    await send({"type": "http.response.start", "status": 431, "headers": headers})
    await send({"type": "http.response.body", "body": b"Request Header Fields Too Large\n"})
