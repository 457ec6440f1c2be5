"""A TCP connection: its protocol, reads and writes; hostile clients (slow request bodies), the
idle timer, keep-alive at shutdown.

Each accepted connection (server/serve.py) is a ``Connection``: it picks the protocol
(choice.py), hands the reading to it where the protocol reads in ``data_received`` (h1.py,
http2.py: see reading.py) or else reads 64 KiB at a time and hands each chunk over, and counts
the bytes and the time spent waiting for them. While the client owes request body bytes
(HTTP/1.1 in its body, or an HTTP/2 stream whose request is still open) a watchdog looks every
second at how many arrived per second of waiting; after a grace period, a rate below the
minimum closes the connection. A client trickling a few bytes every few seconds would otherwise
hold the connection and its buffers for as long as it likes. Time the server itself spends not
reading (the app has not taken the previous chunk yet) is not counted against the client.
Kestrel's MinRequestBodyDataRate (240 bytes/s after 5 s) is the model.

The first request head is bounded by the idle timer: a connection that has not sent one
within ``--header-timeout`` is closed, as is a TLS handshake that takes longer. Later heads
are bounded by each protocol's own keep-alive timer.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from ssl import SSLError
from typing import Any, cast

import h11
from hypercorn.asyncio.task_group import TaskGroup
from hypercorn.asyncio.worker_context import AsyncioSingleTask, WorkerContext
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.typing import ConnectionState, LifespanState
from hypercorn.typing import TaskGroup as AnyTaskGroup
from hypercorn.utils import parse_socket_addr

from hello.config import Settings
from hello.tls.handshakes import HANDSHAKING
from hello.wire.choice import Engines, Protocols
from hello.wire.config import HypercornConfig
from hello.wire.driver import Driver, Served
from hello.wire.policy import DRAIN_IDLE

log = logging.getLogger("hello")

MAX_RECV = 64 * 1024  # bytes read at a time where the protocol does not read for itself
CHECK_EVERY = 1.0  # seconds between looks at a connection that owes body bytes


class IdleTimer(AsyncioSingleTask):
    """A connection's idle timer, restarted and stopped without waiting on the loop.

    The protocols stop it as each request arrives and restart it as a connection goes idle.
    Hypercorn's timer did so under a lock, waiting each time for the cancelled task to end. An
    HTTP/2 client's batch of requests is handled one after another in one task; when each
    response ends before the next request is handled (the connection idle in between), every
    request of the batch waited on the lock behind the app tasks' restarts, a turn of a busy
    loop each: in an h2load run on the Quart page, 1 to 2 % of requests waited 0.3 to 1.1 s. A
    cancelled timer task runs no more of its code (the step it starts or resumes at raises
    CancelledError), so there is nothing to wait for."""

    _timer: asyncio.Task[None] | None = None

    async def restart(self, task_group: AnyTaskGroup, action: Callable[..., Any]) -> None:
        assert isinstance(task_group, TaskGroup)  # the connection's own
        await self.stop()
        self._timer = task_group._task_group.create_task(action())

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


OPEN: set[Connection] = set()  # this process's connections, until each one ends
# At shutdown, how long no connection (nor TLS handshake) must have been under way before the
# process may exit: a connection accepted just before the listener closed is neither for a
# moment, until its handshake begins (TLS) or its task starts.
HANDSHAKE_GRACE = 0.5


async def connections_closed(deadline: float, interval: float = 0.02) -> None:
    """Return once no connection of this process has been open, and no TLS handshake under
    way (tls/handshakes.py), for HANDSHAKE_GRACE seconds, or at ``deadline`` (loop time).

    The worker loop (server/serve.py) waits at shutdown for the connection tasks it had
    when it stopped accepting, a snapshot. A TLS connection accepted just before, whose handshake
    ends after, gets its task later: outside the snapshot, it was cut off with its request
    unanswered when the process exited. Under wrk, 8 reloads over TLS lost 1 to 5 requests
    in about 2 runs of 5; waiting for open connections alone left 1 run of 12 with a loss;
    waiting also for handshakes that end within the grace, none of 12 (tests/test_hostile.py,
    scripts/hostile). A handshake that took longer was still cut: hence HANDSHAKING. Awaited
    before the apps' lifespan shutdown, so their last requests end first.
    """
    loop = asyncio.get_running_loop()
    quiet_since = loop.time()
    told = False
    collect_at = quiet_since
    while loop.time() < deadline:
        if HANDSHAKING and not told:
            told = True
            log.info("stopping: waiting for TLS handshakes under way (%d)", len(HANDSHAKING))
        if HANDSHAKING and not OPEN and loop.time() >= collect_at:
            # A client gone mid-handshake: its SSLObject leaves with its transport's cycle.
            gc.collect()
            collect_at = loop.time() + HANDSHAKE_GRACE / 2
        if OPEN or HANDSHAKING:
            quiet_since = loop.time()
        elif loop.time() - quiet_since >= HANDSHAKE_GRACE:
            return
        await asyncio.sleep(interval)


class Connection:
    """One TCP connection (TLS or not) from its first byte to its close: the protocol chosen
    for it (choice.py), its reads, its writes, its idle timer, and the watch on slow bodies."""

    _received = 0  # bytes read from the client so far
    _waited = 0.0  # seconds spent waiting for them, in finished reads
    _reading_since: float | None = None  # when the read under way began
    _watchdog: asyncio.Future[None] | None = None
    _first: object = None  # the connection's first protocol, which may hand it over
    _task_group: TaskGroup | None = None

    def __init__(
        self,
        served: Served,
        config: HypercornConfig,
        settings: Settings,
        engines: Engines,
        context: WorkerContext,
        state: LifespanState,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.served = served
        self.config = config
        self.settings = settings
        self.engines = engines
        self.context = context
        self.state = state
        self.reader = reader
        self.writer = writer
        self.loop = asyncio.get_running_loop()
        self.send_lock = asyncio.Lock()
        self.idle_task = IdleTimer()
        self.protocol: Protocols | None = None
        self._minimum = settings.min_body_rate  # bytes/s a request body must keep up, or 0

    async def run(self) -> None:
        OPEN.add(self)
        try:
            await self._serve()
        finally:
            OPEN.discard(self)
            self._release()

    async def _serve(self) -> None:
        sock = self.writer.get_extra_info("socket")
        try:
            client = parse_socket_addr(sock.family, sock.getpeername())
            server = parse_socket_addr(sock.family, sock.getsockname())
            ssl_object = self.writer.get_extra_info("ssl_object")
            alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
            async with TaskGroup(self.loop) as task_group:
                self._task_group = task_group
                self.protocol = Protocols(
                    self.engines,
                    self.served,
                    self.config,
                    self.context,
                    task_group,
                    ConnectionState(self.state),
                    ssl_object is not None,
                    client,
                    server,
                    self.protocol_send,
                    self.writer,
                    alpn or "http/1.1",
                )
                await self.protocol.initiate()
                await self.idle_task.restart(task_group, self._idle_timeout)
                await self._read_data()
        except OSError:
            pass
        finally:
            await self._close()

    def _release(self) -> None:
        """Break the reference cycles of a connection that has ended: this connection and
        its protocols refer to each other (``protocol_send``), and so do hello's protocols
        and their parser or frame gate. Left to the garbage collector, a connection's memory
        (its engine's state, its buffers) came back only at the next full collection, which
        hello's tuning makes rare (server/worker.py); released here, it comes back as the
        connection ends."""
        wrapper, self.protocol = self.protocol, None
        self._task_group = None
        first, self._first = self._first, None
        last = wrapper.protocol if wrapper is not None else None
        for protocol in (first,) if last is first else (first, last):
            if isinstance(protocol, Driver):
                protocol.release()

    async def protocol_send(self, event: Event) -> None:
        if isinstance(event, RawData):
            if self.writer.transport.is_closing():
                return  # the client is gone: asyncio would log each write past the fifth
            async with self.send_lock:
                try:
                    self.writer.write(event.data)
                    await self.writer.drain()
                except (ConnectionError, RuntimeError):
                    if self.protocol is not None:
                        await self.protocol.handle(Closed())
        elif isinstance(event, Closed):
            await self._close()
        elif isinstance(event, Updated) and self._task_group is not None:
            if event.idle:
                await self.idle_task.restart(self._task_group, self._idle_timeout)
            else:
                await self.idle_task.stop()

    async def _close(self) -> None:
        """Close the connection, without the traceback a TLS client that never answers the
        server's close_notify would cause: asyncio gives up after its SSL shutdown timeout
        (30 s) and raises TimeoutError. Slowloris clients do that."""
        try:
            self.writer.write_eof()
        except (NotImplementedError, OSError, RuntimeError):
            pass  # TLS: no half-close
        try:
            self.writer.close()
            await self.writer.wait_closed()
        except (TimeoutError, SSLError, OSError, RuntimeError, asyncio.CancelledError):
            pass  # already closed, or the client never answered
        finally:
            await self.idle_task.stop()

    async def _initiate_server_close(self) -> None:
        if self.protocol is not None:
            await self.protocol.handle(Closed())
        self.writer.close()

    async def _read_data(self) -> None:
        assert self.protocol is not None
        timeout = self.config.read_timeout
        self._first = first = self.protocol.protocol
        if isinstance(first, Driver):
            transport = cast(asyncio.Transport, self.writer.transport)
            reader = await first.read_directly(transport, self.reader, self)
            if reader is not None:
                self.reader = reader
                timeout = None  # this reader waits for the end only; reading.py reads the rest
        try:
            while not self.reader.at_eof():
                self.waiting()
                try:
                    data = await asyncio.wait_for(self.reader.read(MAX_RECV), timeout)
                except (ConnectionError, OSError, TimeoutError, SSLError):
                    break
                finally:
                    self.not_waiting()
                await self.protocol.handle(RawData(data))
                self.received(len(data))
            await self.protocol.handle(Closed())
        finally:
            if self._watchdog is not None:
                self._watchdog.cancel()

    # --- reading.Meter: what the client sent, and how long the server waited for it ---

    def received(self, size: int, awaiting_body: bool | None = None) -> None:
        """``size`` more bytes came; ``awaiting_body``, where the reader knows it, says
        whether the client owes request body bytes now (else the protocol is asked)."""
        self._received += size
        if not self._minimum or self._watchdog is not None or awaiting_body is False:
            return
        if awaiting_body or self._awaiting_body():
            self._watchdog = asyncio.ensure_future(self._watch_body(self._minimum, self.settings))

    def waiting(self) -> None:
        if self._reading_since is None:
            self._reading_since = asyncio.get_running_loop().time()

    def not_waiting(self) -> None:
        started, self._reading_since = self._reading_since, None
        if started is not None:
            self._waited += asyncio.get_running_loop().time() - started

    def _waited_now(self) -> float:
        ongoing = self._reading_since
        return self._waited + (asyncio.get_running_loop().time() - ongoing if ongoing else 0.0)

    async def _watch_body(self, minimum: int, settings: Settings) -> None:
        """While the client owes body bytes: close the connection if they come too slowly.
        Only time spent waiting on the client counts (not time the app took to read)."""
        received, waited = self._received, self._waited_now()
        try:
            while self._awaiting_body():
                await asyncio.sleep(CHECK_EVERY)
                got, spent = self._received - received, self._waited_now() - waited
                if spent > settings.body_rate_grace and got < minimum * spent:
                    self._log_slow(got / spent, minimum)
                    await asyncio.shield(self._initiate_server_close())
                    return
        finally:
            self._watchdog = None

    async def _idle_timeout(self) -> None:
        """Close an idle connection after the header timeout; but when the
        worker begins to shut down, give a busy client a moment to send its next request
        (answered with Connection: close) before closing, instead of closing under it."""
        terminated = self.context.terminated.wait()
        try:
            await asyncio.wait_for(terminated, self.config.keep_alive_timeout)
        except TimeoutError:
            pass
        else:
            protocol = self.protocol.protocol if self.protocol is not None else None
            if isinstance(protocol, Driver):
                await protocol.shutting_down()  # HTTP/2: GOAWAY, so no new stream is lost
            # Close only once nothing arrived for DRAIN_IDLE and no request is under way:
            # a request that did arrive is answered with Connection: close instead.
            while not self.reader.at_eof():
                seen = self._received
                await asyncio.sleep(DRAIN_IDLE)
                if seen == self._received and not self._busy():
                    break
        await asyncio.shield(self._initiate_server_close())

    def _busy(self) -> bool:
        """Whether a request is under way (or has begun to arrive) on this connection."""
        if self.reader.at_eof() or self.protocol is None:
            return False
        protocol = self.protocol.protocol
        if isinstance(protocol, Driver):
            return protocol.busy
        if isinstance(protocol, H11Protocol):
            connection = protocol.connection
            if not isinstance(connection, h11.Connection):
                return True  # a WebSocket: its own stream handles the shutdown
            return (
                connection.their_state is h11.SEND_BODY
                or connection.our_state in (h11.SEND_RESPONSE, h11.SEND_BODY)
                or bool(connection.trailing_data[0])
            )
        return not protocol.idle

    def _awaiting_body(self) -> bool:
        """Whether the client owes this connection request body bytes right now."""
        if self.protocol is None:
            return False
        protocol = self.protocol.protocol
        if isinstance(protocol, Driver):
            return protocol.awaiting_body
        if isinstance(protocol, H11Protocol):  # after an Upgrade
            connection = protocol.connection
            return (
                isinstance(connection, h11.Connection) and connection.their_state is h11.SEND_BODY
            )
        return False

    def _log_slow(self, rate: float, minimum: int) -> None:
        peer = self.writer.get_extra_info("peername")
        log.info(
            "closing a connection from %s: request body at %.0f bytes/s, under the minimum "
            "of %d (--min-body-rate)",
            peer[0] if isinstance(peer, tuple) else peer,
            rate,
            minimum,
        )
