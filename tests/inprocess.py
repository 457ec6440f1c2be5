"""hello's protocols driven in this process: a connection with no socket, fed bytes as a client
would send them, its answer read back as the client would read it.

``ServerConnection`` stands where wire/tcp.py's ``Connection`` stands in production: it builds
the connection's protocols as that does (wire/choice.py) for the engine asked for, hands them a
``FakeTransport`` (what the server writes is kept), and reads for them as it does: straight
into hello's protocols (every engine: they read in ``data_received``), or through Hypercorn's
event interface after an Upgrade. The clients (``H1Client``, ``H2Client``) speak to it in
bytes: a real HTTP/1.1 parser (h11) and a real HTTP/2 one (h2) read what it wrote. uvicorn's
tests/protocols/test_http.py is the model: milliseconds a test, the whole protocol and none
of the network.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import h2.config
import h2.connection
import h2.events
import h11
from hypercorn.asyncio.task_group import TaskGroup
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.events import Closed, Event, RawData
from hypercorn.typing import ASGIFramework, ConnectionState
from hypercorn.utils import wrap_app

from hello.asgi_types import ASGIApp
from hello.config import Settings
from hello.config.load import load
from hello.stack.build import Stack
from hello.stack.limits import HeaderLimit
from hello.wire.choice import Engines, Protocols, choose_engines
from hello.wire.config import HypercornConfig
from hello.wire.driver import Driver, Served

HTTP1_ENGINES = ("httptools", "h11")  # h11: as where httptools cannot be imported
HTTP2_ENGINES = ("ngh2", "h2")
ENGINES = HTTP1_ENGINES + HTTP2_ENGINES
CLIENT = ("203.0.113.7", 50000)
SERVER = ("127.0.0.1", 8000)
WAIT = 5.0  # seconds a conversation may take before the test fails


async def until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Return once ``condition()`` holds, letting the server's tasks run; fail after
    ``timeout`` seconds, naming ``what`` was awaited."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    turns = 0
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"in-process connection: timed out waiting for {what}")
        turns += 1
        # A few turns of the loop first (most answers take one or two), then small waits
        # for what runs in threads or on timers.
        await asyncio.sleep(0 if turns < 50 else 0.005)  # not a wait: the poll's interval


async def quiet_turns(count: int = 20) -> None:
    """Let the server's tasks run ``count`` turns of the loop: a span in which something that
    must not happen (a 100 Continue before the app asks, a close) would have. In process, an
    answer takes one or two turns."""
    for _ in range(count):
        await asyncio.sleep(0)  # not a wait for readiness: the span itself is the point


class FakeTransport(asyncio.Transport):
    """A connection's transport without a socket: writes are kept in ``written``."""

    def __init__(self, protocol: asyncio.BaseProtocol, tls: bool) -> None:
        super().__init__()
        self.protocol = protocol
        self.tls = tls
        self.written = bytearray()
        self.closing = False
        self.reading = True
        self.high_water = 64 * 1024

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self.closing:
            self.written += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def get_write_buffer_size(self) -> int:
        return 0  # the client takes everything at once

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (0, self.high_water)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is not None:
            self.high_water = high

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": CLIENT, "sockname": SERVER}.get(name, default)


class _Tasks(TaskGroup):
    """Hypercorn's task group, keeping count of the tasks it runs: the connection waits for
    them at its end, and a test that failed does not wait forever for an app."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, func: Callable[..., Any], *args: Any) -> None:
        task = self._task_group.create_task(func(*args))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


class _StreamEnd(asyncio.Protocol):
    """What stands in the transport's protocol slot before the protocol reads it directly:
    asyncio's stream protocol, told of the connection's end."""

    def __init__(self) -> None:
        self.lost = False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


def settings(**flags: Any) -> Settings:
    """Settings as the command line would give them (``max_header_size="8192"``)."""
    return load(flags={"bind": "127.0.0.1:0", **{k: str(v) for k, v in flags.items()}})


def served(app: ASGIApp, config: Settings) -> Served:
    """``app`` as a worker serves it: under the outermost layer build_app puts around every
    app (the 431 of HTTP/2 and HTTP/3), which hello's own protocols skip."""
    outer = HeaderLimit(app, config.max_header_size)
    stack = Stack(outer, app, app, None, config.max_header_size)
    return Served(wrap_app(cast(ASGIFramework, outer), config.max_body_size, "asgi"), stack)


@dataclass
class ServerConnection:
    """One connection of hello's, on ``engine``, serving ``app``; what the TCP server does
    for it in production is done here."""

    engine: str
    app: ASGIApp
    config: Settings = field(default_factory=settings)
    tls: bool = False
    closed: bool = False  # the server closed the connection
    transport: FakeTransport = field(init=False)
    protocol: Protocols = field(init=False)
    context: WorkerContext = field(init=False)
    _group: _Tasks = field(init=False)
    _inbox: asyncio.Queue[bytes | None] = field(init=False)
    _reader: asyncio.Task[None] | None = field(init=False, default=None)

    async def __aenter__(self) -> ServerConnection:
        loop = asyncio.get_running_loop()
        self._group = _Tasks(loop)
        await self._group.__aenter__()
        self.context = WorkerContext(None)
        engines, alpn = _engines(self.engine)
        self.protocol = Protocols(
            engines,
            served(self.app, self.config),
            HypercornConfig(self.config),
            self.context,
            self._group,
            ConnectionState({}),
            self.tls,
            CLIENT,
            SERVER,
            self._server_sends,
            None,  # no StreamWriter: the protocols write through the transport, or events
            alpn,
        )
        stream_end = _StreamEnd()
        self.transport = FakeTransport(stream_end, self.tls)
        self._inbox = asyncio.Queue()
        await self.protocol.initiate()
        # Read as the connection does: handed over once, to a protocol that reads directly
        # (the reader it returns only learns of the end), or chunk by chunk through events.
        reader: asyncio.StreamReader = _InboxReader(self._inbox)
        protocol = self.protocol.protocol
        if isinstance(protocol, Driver):
            reader = await protocol.read_directly(self.transport, reader, None) or reader
        self._reader = asyncio.ensure_future(self._read(reader))
        return self

    async def __aexit__(self, *exc: Any) -> None:
        """The client leaves; the server's tasks (reader, apps) must end. After a test that
        failed they are cancelled instead, again while one cancelled still waits on something
        (Hypercorn's app task sends its last event as it is cancelled), so the failure is
        reported, not hung."""
        if not self.closed:
            self.client_gone()
        if exc[0] is None:
            await until(lambda: not self._group.tasks, "the connection's tasks to end")
            assert self._reader is not None
            await self._reader
            await self._group.__aexit__(*exc)  # no exception: (None, None, None)
            return
        tasks = {*self._group.tasks, *([self._reader] if self._reader else [])}
        for _ in range(5):
            for task in tasks:
                task.cancel()
            _, tasks = await asyncio.wait(tasks, timeout=0.2) if tasks else (set(), set())

    # --- the client's side ---

    def client_sends(self, data: bytes) -> None:
        """Bytes from the client, as the socket would deliver them."""
        protocol = self.transport.protocol
        if isinstance(protocol, _StreamEnd) or self.transport.closing:
            self._inbox.put_nowait(data)
        else:
            cast(asyncio.Protocol, protocol).data_received(data)

    def client_gone(self) -> None:
        """The client closed the connection: what the server writes from now on is lost."""
        protocol = self.transport.protocol
        self.transport.closing = True
        if isinstance(protocol, _StreamEnd):
            self._inbox.put_nowait(None)
        else:
            protocol.connection_lost(None)

    def take(self) -> bytes:
        """What the server wrote since the last take."""
        data = bytes(self.transport.written)
        self.transport.written.clear()
        return data

    # --- the TCP server's side ---

    async def _server_sends(self, event: Event) -> None:
        if isinstance(event, RawData):
            self.transport.write(event.data)
        elif isinstance(event, Closed) and not self.closed:
            self.closed = True
            self.transport.close()  # a protocol reading directly learns of it from here,
            self._inbox.put_nowait(None)  # one read through its events from here

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while not reader.at_eof():
            data = await reader.read(65536)
            if data:
                await self.protocol.handle(RawData(data))
        await self.protocol.handle(Closed())
        self.closed = True


class _InboxReader(asyncio.StreamReader):
    """A stream reader fed from the connection's inbox (before, or instead of, direct
    reading): bytes, or None for the client's end."""

    def __init__(self, inbox: asyncio.Queue[bytes | None]) -> None:
        super().__init__()
        self.inbox = inbox

    async def read(self, n: int = -1) -> bytes:
        if self.at_eof():
            return b""
        item = await self.inbox.get()
        if item is None:
            self.feed_eof()
            return b""
        return item


def _engines(engine: str) -> tuple[Engines, str]:
    """The engines of a process serving HTTP/1.1 or HTTP/2 on ``engine``, and what ALPN said."""
    if engine == "httptools":
        return choose_engines("auto"), "http/1.1"
    if engine == "h11":  # as where httptools cannot be imported
        return choose_engines("auto", "h11"), "http/1.1"
    if engine in HTTP2_ENGINES:
        return choose_engines(engine), "h2"
    raise ValueError(f"no such engine: {engine}")


# --- clients ---


@dataclass
class Response:
    """What a client read of one response."""

    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    informational: list[int] = field(default_factory=list)
    complete: bool = False  # the whole response arrived, framed as it said
    reset: int | None = None  # HTTP/2: the stream was reset with this code

    def header(self, name: bytes) -> bytes | None:
        return next((v for n, v in self.headers if n == name), None)


class H1Client:
    """HTTP/1.1 requests written by hand (so they can be wrong) and responses read by h11."""

    def __init__(self, server: ServerConnection) -> None:
        self.server = server
        self.parser = h11.Connection(h11.CLIENT)
        self.responses: list[Response] = []
        self.current: Response | None = None
        self.broken: str | None = None  # the server's bytes broke HTTP/1.1's framing

    def send(self, data: bytes) -> None:
        self.server.client_sends(data)

    def request(
        self,
        method: str,
        path: str,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        end: bool = True,
    ) -> None:
        """Send a request; with ``end`` False, only its head (the body follows by ``send``)."""
        head = f"{method} {path} HTTP/1.1\r\nhost: example.com\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers)
        named = {name.lower() for name, _ in headers}
        if body and not named & {"content-length", "transfer-encoding"}:
            head += f"content-length: {len(body)}\r\n"
        self.send(head.encode() + b"\r\n" + (body if end else b""))
        # h11 must know of the request to read its response.
        self.parser.send(h11.Request(method=method, target=path, headers=[("host", "x")]))
        self.parser.send(h11.EndOfMessage())

    def read(self) -> None:
        data = self.server.take()
        if data and self.broken is None:
            self.parser.receive_data(data)
        if self.server.closed and self.broken is None:
            self.parser.receive_data(b"")
        while self.broken is None:
            try:
                event = self.parser.next_event()
            except h11.RemoteProtocolError as error:
                self.broken = str(error)
                return
            if event in (h11.NEED_DATA, h11.PAUSED) or isinstance(event, h11.ConnectionClosed):
                return
            self._event(event)

    def _event(self, event: Any) -> None:
        if isinstance(event, h11.InformationalResponse):
            self.current = self.current or Response()
            self.current.informational.append(event.status_code)
        elif isinstance(event, h11.Response):
            self.current = self.current or Response()
            self.current.status = event.status_code
            self.current.headers = [(n, v) for n, v in event.headers]
        elif isinstance(event, h11.Data) and self.current is not None:
            self.current.body += event.data
        elif isinstance(event, h11.EndOfMessage) and self.current is not None:
            self.current.trailers = [(n, v) for n, v in event.headers]
            self.current.complete = True
            self.responses.append(self.current)
            self.current = None
            if self.parser.our_state is h11.DONE and self.parser.their_state is h11.DONE:
                self.parser.start_next_cycle()

    def _answered(self) -> bool:
        self.read()
        return bool(self.responses) or self.server.closed

    async def response(self) -> Response:
        """The next whole response; or, if the connection closed first, what arrived."""
        await until(self._answered, "a response")
        self.read()
        if self.responses:
            return self.responses.pop(0)
        return self.current or Response()

    async def fetch(
        self, method: str, path: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b""
    ) -> Response:
        self.request(method, path, headers, body)
        return await self.response()


class H2Client:
    """An HTTP/2 client on h2: requests as frames, responses as h2 reads them."""

    def __init__(self, server: ServerConnection) -> None:
        self.server = server
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.conn.initiate_connection()
        self.responses: dict[int, Response] = {}
        self.goaway: int | None = None
        self.flush()

    @classmethod
    def upgraded(cls, server: ServerConnection, received: bytes) -> H2Client:
        """The client of a connection upgraded to h2c (its request is stream 1), fed what
        the server wrote after its 101."""
        client = cls.__new__(cls)
        client.server = server
        client.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        client.conn.initiate_upgrade_connection()
        client.responses = {1: Response()}
        client.goaway = None
        client.flush()
        server.transport.written[:0] = received
        return client

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.server.client_sends(data)

    def request(
        self,
        method: str,
        path: str,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        end: bool = True,
    ) -> int:
        stream = self.conn.get_next_available_stream_id()
        fields = [(":method", method), (":scheme", "https" if self.server.tls else "http")]
        fields += [(":path", path), (":authority", "example.com"), *headers]
        self.conn.send_headers(stream, fields, end_stream=end and not body)
        if body:
            self.conn.send_data(stream, body, end_stream=end)
        self.flush()
        self.responses[stream] = Response()
        return stream

    def read(self) -> None:
        data = self.server.take()
        if not data:
            return
        for event in self.conn.receive_data(data):
            self._event(event)
        self.flush()

    def _event(self, event: h2.events.Event) -> None:
        stream = getattr(event, "stream_id", 0)
        response = self.responses.get(stream)
        if isinstance(event, h2.events.InformationalResponseReceived) and response:
            response.informational.append(int(dict(event.headers)[b":status"]))
        elif isinstance(event, h2.events.ResponseReceived) and response:
            fields = list(event.headers)
            response.status = int(dict(fields)[b":status"])
            response.headers = [(n, v) for n, v in fields if not n.startswith(b":")]
        elif isinstance(event, h2.events.DataReceived) and response:
            response.body += event.data
            self.conn.acknowledge_received_data(event.flow_controlled_length, stream)
        elif isinstance(event, h2.events.TrailersReceived) and response:
            response.trailers = list(event.headers)
        elif isinstance(event, h2.events.StreamEnded) and response:
            response.complete = True
        elif isinstance(event, h2.events.StreamReset) and response:
            response.reset = event.error_code
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = event.error_code

    def send_data(self, stream: int, data: bytes, end: bool = False) -> None:
        self.conn.send_data(stream, data, end_stream=end)
        self.flush()

    async def response(self, stream: int) -> Response:
        """The stream's response once it ended, was reset, or the connection closed."""
        response = self.responses[stream]

        def ended() -> bool:
            self.read()
            return response.complete or response.reset is not None or self.server.closed

        await until(ended, f"the response on stream {stream}")
        return response

    async def fetch(
        self, method: str, path: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b""
    ) -> Response:
        return await self.response(self.request(method, path, headers, body))


def client(server: ServerConnection) -> H1Client | H2Client:
    """The client that speaks the server's protocol."""
    return H2Client(server) if server.engine in HTTP2_ENGINES else H1Client(server)
