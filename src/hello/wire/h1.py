"""HTTP/1.1: one driver over a request parser, httptools (llhttp, the parser uvicorn and
Node.js use) or h11 where httptools cannot be imported (h1_parsers.py).

The driver has the interface of Hypercorn's protocols (hello's connection, tcp.py, builds it
for every TCP connection that did not negotiate h2) and speaks ASGI to the app through the
exchange (exchange.py, framed for HTTP/1.1 in h1_cycle.py): the request head is parsed by
the engine, the body is queued for ``receive()`` with backpressure, and the response head
is written with the first body bytes, with Content-Length or chunked framing. It reads the
connection itself, in ``data_received``, instead of being handed each chunk by a reader task
(reading.py).

Anything unusual on a connection's first request -- an Upgrade (WebSocket, h2c) or HTTP/2's
prior-knowledge preface -- is handed, with the bytes received so far, to Hypercorn's own h11
protocol (h11.py), which keeps the connection from then on. An upgrade later on a keep-alive
connection is refused (400).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.typing import ConnectionState, TaskGroup, WorkerContext

from hello.wire.config import HypercornConfig
from hello.wire.driver import Driver, Served
from hello.wire.exchange import http_scope
from hello.wire.h1_cycle import REASONS, Cycle
from hello.wire.h1_parsers import ParserEngine, parser_engine
from hello.wire.h1_rules import H2_PROTOCOL_ERROR, Refused, check_request, not_http1
from hello.wire.policy import (
    BODY_HIGH_WATER,
    DRAIN_IDLE,
    IDLE_CHECK,
    PIPELINE_LIMIT,
    TLS_HIGH_WATER,
    WRITE_HIGH_WATER,
)
from hello.wire.reading import Meter, Reading

Fallback = Callable[[], Any]  # builds Hypercorn's h11 protocol for this connection


class H1Protocol(Driver):
    """Hypercorn's HTTP/1.1 protocol interface, on httptools or h11."""

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
        parser: ParserEngine | None = None,
        fallback: Fallback | None = None,
    ) -> None:
        # The app under the stack's outer layers, whose work this protocol does (stack/build.py).
        self.asgi = served.stack.http1
        self.config = config
        self.context = context
        self.task_group = task_group
        self.connection_state = connection_state
        self.scheme = "https" if ssl else "http"
        self.piece = 0  # over TLS, a larger write goes out in pieces of this size
        self.client = client
        self.server = server
        self.send = send
        self.writer = writer  # the connection's, for writes before reading_directly
        self.fallback = fallback
        self.delegate: Any = None  # Hypercorn's h11 protocol, once an upgrade needs it
        self.engine = engine = parser or parser_engine()
        self.parser = engine.build(self)
        self.prefix: bytearray | None = bytearray()  # bytes of the connection until a cycle
        self.url = bytearray()
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_size = 0  # bytes of the request head parsed so far
        self.in_head = False
        self.flow = asyncio.Event()  # reading may go on (see _blocked)
        self.held = False  # reading waits on ``flow`` or is paused: unblocked() has work
        self.reading: Reading | None = None  # while the connection is read in data_received
        self.refused = False  # a 400 or 431 is on its way: the rest is not parsed
        self.refusal: int | None = None  # ...sent after the requests parsed before it
        self.final_parsed = False  # a request that ends the connection was parsed
        self.hand_over_due = False
        self.parsing: Cycle | None = None  # the cycle whose request is being parsed
        self.queue: deque[Cycle] = deque()  # parsed heads waiting for the current cycle
        self.cycle: Cycle | None = None  # the cycle the app is answering
        self.requests = 0
        self.closed = False
        self.loop = asyncio.get_running_loop()
        self.idle_since: float | None = None  # keep-alive: when the last response ended
        self.idle_timer: asyncio.TimerHandle | None = None

    # --- what tcp.py asks ---

    @property
    def awaiting_body(self) -> bool:
        return self.parsing is not None and self.parsing.more_body and not self.parsing.complete

    @property
    def busy(self) -> bool:
        return self.in_head or self.cycle is not None or bool(self.queue)

    @property
    def idle(self) -> bool:
        return not self.busy

    # --- Hypercorn's protocol interface ---

    async def initiate(self) -> None:
        pass

    async def handle(self, event: Event) -> None:
        if self.delegate is not None:
            await self.delegate.handle(event)
        elif isinstance(event, RawData):
            await self._received(event.data)
        elif isinstance(event, Closed):
            self.closed = True
            if self.idle_timer is not None:
                self.idle_timer.cancel()
                self.idle_timer = None
            self._disconnected()

    def release(self) -> None:
        """The connection has ended (tcp.Connection._release): break the cycle with
        the parser, which holds this protocol's callbacks, and the reader (nothing feeds
        them once the connection is closed). Called once."""
        del self.parser
        self.reading = None

    async def read_directly(
        self, transport: asyncio.Transport, reader: asyncio.StreamReader, meter: Meter | None
    ) -> asyncio.StreamReader:
        """From now on, read the connection in ``data_received`` (see reading.py), feeding
        first what ``reader`` holds. The reader to wait on: it learns of the connection's
        end, and gets the connection back if it turns out to be for another protocol."""
        if self.delegate is not None or transport.is_closing() or reader.at_eof():
            return reader
        self.reading = reading = Reading(self, transport, meter)
        transport.set_protocol(reading)
        if self.scheme == "https":
            transport.set_write_buffer_limits(high=TLS_HIGH_WATER)
            self.piece = TLS_HIGH_WATER
        # What arrived before the switch: told that nothing more comes, the reader gives
        # it up without waiting.
        reader.feed_eof()
        early = await reader.read()
        if early:
            reading.data_received(early)
        return reading.reader

    async def _received(self, data: bytes) -> None:
        """Hypercorn's way: ``data`` read by its TCPServer; return when it may read more."""
        if not data:
            return
        self.feed(data)
        if self.hand_over_due:
            await self._hand_over()
            return
        while self._blocked():
            self.held = True
            self.flow.clear()
            await self.flow.wait()

    def feed(self, data: bytes) -> None:
        """Parse ``data`` and start the requests it completes; anything that must wait (a
        refusal, a hand-over) is left to a task or to ``_received``."""
        if self.closed or self.refused:
            return
        if self.prefix is not None:
            self.prefix += data
            if self.prefix.startswith(b"PRI "):  # HTTP/2 with prior knowledge
                self._must_hand_over()
                return
        engine = self.engine
        try:
            self.parser.feed_data(data)
        except engine.upgrade:
            if self.prefix is not None and self.fallback is not None:
                self._must_hand_over()
            else:
                self._refuse_soon(400)
                if self.refusal is not None:
                    self._start_next()
            return
        except engine.error as error:
            refused = error.__context__  # raised by a callback below, if one refused
            if self.final_parsed:
                self.refused = True  # bytes after a request that ends the connection: ignored
            elif self._not_http1():
                self._refuse_soon(0)
            else:
                self._refuse_soon(refused.status if isinstance(refused, Refused) else 400)
            if self.refusal is not None or self.final_parsed:
                self._start_next()  # the requests before the bad bytes are answered first
            return
        if self.in_head:
            self.head_size += len(data)  # an unfinished head, counted by what arrived
            if self.head_size > self.config.h11_max_incomplete_size:
                self._refuse_soon(431)
                return
        self._start_next()
        if self.reading is not None and self._blocked():
            self.held = True
            self.reading.pause()

    def _blocked(self) -> bool:
        """Whether reading must wait: for a pipelining client's answers, or for the app to
        take the request body already buffered (backpressure)."""
        if self.closed:
            return False
        parsing = self.parsing
        return len(self.queue) >= PIPELINE_LIMIT or (
            parsing is not None and parsing.buffered > BODY_HIGH_WATER and not parsing.complete
        )

    def unblocked(self) -> None:
        """Something reading may have waited for happened; go on reading if it may."""
        if not self.held or self._blocked():
            return
        self.held = False
        self.flow.set()
        reading = self.reading
        if reading is not None and reading.paused:
            reading.resume()

    def _must_hand_over(self) -> None:
        reading = self.reading
        if reading is None:
            self.hand_over_due = True  # _received does it
            return
        # Read directly: give the connection back to asyncio's stream, replaying what came;
        # parsed again by _received, it is handed over there.
        assert self.prefix is not None
        replay = bytes(self.prefix)
        self.reading = None
        self.prefix = bytearray()
        self.parser = self.engine.build(self)
        self.in_head = False
        reading.to_stream(replay)

    def _refuse_soon(self, status: int) -> None:
        """Stop parsing; answer ``status`` and close, once the requests parsed before the bad
        one are answered. Bad bytes within the body of the request the app is answering
        end it at once (the app learns the client is gone); within the body of one still
        waiting its turn, that request is dropped unanswered."""
        self.refused = True
        parsing, self.parsing = self.parsing, None
        if parsing is not None and parsing is self.cycle:
            self.task_group.spawn(self._refuse, status)
            return
        if parsing is not None:
            self.queue.remove(parsing)
        if self.cycle is None and not self.queue:
            self.task_group.spawn(self._refuse, status)
        else:
            self.refusal = status

    async def _hand_over(self) -> None:
        assert self.prefix is not None and self.fallback is not None
        self.delegate = self.fallback()
        await self.delegate.initiate()
        await self.delegate.handle(RawData(bytes(self.prefix)))

    # --- the parser's callbacks (synchronous, during feed_data) ---

    def on_message_begin(self) -> None:
        self.url.clear()
        self.headers = []
        self.head_size = 0
        self.in_head = True

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))
        self.head_size += len(name) + len(value) + 4

    def on_headers_complete(self) -> None:
        self.in_head = False
        if self.head_size > self.config.h11_max_incomplete_size:
            raise Refused(431)
        if self.parser.should_upgrade():
            return  # feed_data raises HttpParserUpgrade next
        version = self.parser.get_http_version()
        expects_continue = check_request(version, self.headers)
        scope = http_scope(
            version,
            self.parser.get_method().decode("ascii"),
            self.scheme,
            bytes(self.url),
            self.headers,
            self.client,
            self.server,
            self.config.root_path,
            self.connection_state.copy(),
        )
        cycle = Cycle(self, scope, self.parser.should_keep_alive())
        cycle.expect_continue = expects_continue
        self.parsing = cycle
        self.queue.append(cycle)

    def on_body(self, body: bytes) -> None:
        if self.parsing is not None:
            self.parsing.add_body(body)

    def on_message_complete(self) -> None:
        cycle = self.parsing
        if cycle is not None:
            cycle.end_body()
            self.final_parsed = not cycle.keep_alive
        self.parsing = None
        if self.held:
            self.unblocked()

    # --- running cycles ---

    def _start_next(self) -> None:
        if self.cycle is not None or not self.queue or self.closed:
            return
        self.cycle = cycle = self.queue.popleft()
        self.prefix = None  # a normal request ran: no hand-over from now on
        self.requests += 1
        if self.requests >= self.config.keep_alive_max_requests:
            cycle.keep_alive = False
        self.idle_since = None
        self.task_group.spawn(self._run, cycle, self.requests == 1)
        if self.held:
            self.unblocked()  # a pipelining client may send more

    async def _run(self, cycle: Cycle, first: bool) -> None:
        if first:
            # Hypercorn's idle task bounds the first request head (and lingers at shutdown);
            # after it, this protocol keeps its own timer: no task per request.
            await self.send(Updated(idle=False))
        await cycle.serve(self.asgi, (), self.config.log)
        await self._finished(cycle)

    async def _finished(self, cycle: Cycle) -> None:
        self.cycle = None
        if self.held:
            self.unblocked()  # the rest of a body it did not read is read (and dropped)
        if not (cycle.complete and cycle.keep_alive) or cycle.disconnected:
            await self._close()
            return
        if self.queue:
            self._start_next()
        elif self.refusal is not None:
            await self._refuse(self.refusal)
        else:
            self.idle_since = self.loop.time()
            if self.idle_timer is None:
                self.idle_timer = self.loop.call_later(IDLE_CHECK, self._idle_check)

    def _idle_check(self) -> None:
        """Between requests: close after the keep-alive timeout (which also bounds the next
        request head), or soon once the worker shuts down, unless a request has begun."""
        self.idle_timer = None
        if self.idle_since is None or self.closed:
            return  # a request is under way; its end starts the clock again
        idle = self.loop.time() - self.idle_since
        shutting_down = self.context.terminated.is_set() and not self.in_head
        if idle >= self.config.keep_alive_timeout or (shutting_down and idle >= DRAIN_IDLE):
            self.task_group.spawn(self._close)
        else:
            self.idle_timer = self.loop.call_later(IDLE_CHECK, self._idle_check)

    async def write(self, data: bytes) -> None:
        if self.closed:
            return
        # Straight to the transport; wait only while the client is not taking what was sent
        # (Hypercorn's path takes a lock and awaits drain() on every write).
        reading, writer = self.reading, self.writer
        transport: asyncio.WriteTransport
        if reading is not None:
            transport = reading.transport
        elif writer is not None:
            transport = writer.transport
        else:
            await self.send(RawData(data))
            return
        if transport.is_closing():
            return  # the client is gone: asyncio would log each write past the fifth
        try:
            if self.piece and reading is not None and len(data) > self.piece:
                await self._write_pieces(reading, data)
                return
            transport.write(data)
            if reading is not None:
                if reading.writable is not None:  # the transport is full: wait for it
                    await reading.drain()
            elif writer is not None and transport.get_write_buffer_size() > WRITE_HIGH_WATER:
                await writer.drain()
        except (ConnectionError, RuntimeError):
            await self.handle(Closed())

    async def _write_pieces(self, reading: Reading, data: bytes) -> None:
        """``data`` a piece at a time (self.piece bytes), each once the last was taken."""
        view, piece = memoryview(data), self.piece
        for start in range(0, len(view), piece):
            if reading.transport.is_closing():
                return
            reading.transport.write(view[start : start + piece])
            if reading.writable is not None:
                await reading.drain()

    def _not_http1(self) -> bool:
        """Whether this plain connection's first bytes are no HTTP/1.x (h1_rules.not_http1)."""
        return self.prefix is not None and self.scheme == "http" and not_http1(bytes(self.prefix))

    async def _refuse(self, status: int) -> None:
        """Answer ``status`` (0: an invalid HTTP/2 preface, answered as HTTP/2 does) and close."""
        if status == 0:
            await self.write(H2_PROTOCOL_ERROR)
        elif self.cycle is None or self.cycle.complete:  # else a response is half written
            reason = REASONS.get(status, b"")
            head = b"HTTP/1.1 %d %b\r\n" % (status, reason)
            headers = [(b"content-length", b"0"), (b"connection", b"close")]
            headers += self.config.response_headers("h11")
            await self.write(head + b"".join(b"%b: %b\r\n" % h for h in headers) + b"\r\n")
        await self._close()

    async def _close(self) -> None:
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None
        if not self.closed:
            self.closed = True
            self._disconnected()
            await self.send(Closed())

    def _disconnected(self) -> None:
        self.flow.set()
        for cycle in (self.cycle, self.parsing, *self.queue):
            if cycle is not None:
                cycle.gone()
