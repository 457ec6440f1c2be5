"""hello's worker loop: the app's lifespan, a server on each listening socket, a connection
task for each client, and the drain when the worker stops.

The order at a stop: the worker is marked terminated (connections answer their next request
with ``Connection: close`` and HTTP/2 sends GOAWAY), the listeners close, the connection
tasks get ``graceful_timeout`` to end, and then the lifespan shuts down (stack/lifespan.py
first waits there for connections still arriving: tcp.connections_closed). Hypercorn's
Lifespan runs the app's startup and shutdown; everything else is hello's.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from asyncio.selector_events import BaseSelectorEventLoop
from asyncio.sslproto import SSLProtocol
from collections.abc import Awaitable, Callable
from socket import socket

from hypercorn.asyncio.lifespan import Lifespan
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Sockets
from hypercorn.typing import AppWrapper, LifespanState
from hypercorn.utils import repr_socket_addr

from hello.config import Settings
from hello.wire.choice import Engines
from hello.wire.config import HypercornConfig
from hello.wire.driver import Served
from hello.wire.tcp import Connection

log = logging.getLogger("hello")

# asyncio gives each TLS connection a 256 KiB read buffer, allocated whole as it is accepted
# (400 idle clients held 100 MB); two TLS records' worth is enough.
TLS_READ_BUFFER = 32 * 1024
Accepted = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class TLSProtocol(SSLProtocol):
    """asyncio's TLS protocol with a read buffer of TLS_READ_BUFFER."""

    max_size = TLS_READ_BUFFER


async def serve(
    served: Served,
    config: HypercornConfig,
    settings: Settings,
    engines: Engines,
    sockets: Sockets,
    shutdown_trigger: Callable[[], Awaitable[object]],
) -> None:
    """Serve ``sockets`` until ``shutdown_trigger`` returns (or the worker asks to stop), then
    drain and return. Raises what the app's lifespan startup raised."""
    loop = asyncio.get_running_loop()
    state: LifespanState = {}
    app = served.wrapped
    lifespan = Lifespan(app, config, loop, state)
    lifespan_task = loop.create_task(lifespan.handle_lifespan())
    await lifespan.wait_for_startup()
    if lifespan_task.done() and (error := lifespan_task.exception()) is not None:
        raise error
    context = WorkerContext(None)
    tasks: set[asyncio.Task[None]] = set()

    async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        connection = Connection(served, config, settings, engines, context, state, reader, writer)
        await connection.run()

    servers: list[asyncio.Server] = []
    tls = config.create_ssl_context() if sockets.secure_sockets else None
    for sock in sockets.secure_sockets:
        assert tls is not None
        servers.append(await _tls_server(accepted, tls, sock, config))
        await _running(config, "https", sock)
    for sock in sockets.insecure_sockets:
        servers.append(await asyncio.start_server(accepted, backlog=config.backlog, sock=sock))
        await _running(config, "http", sock)
    for sock in sockets.quic_sockets:
        tasks.add(await _quic(app, config, context, state, sock))
        await _running(config, "https", sock, " (QUIC)")
    try:
        stop = asyncio.ensure_future(shutdown_trigger())
        terminate = asyncio.ensure_future(context.terminate.wait())
        await asyncio.wait({stop, terminate}, return_when=asyncio.FIRST_COMPLETED)
        for waiter in (stop, terminate):
            waiter.cancel()
    finally:
        await _drain(context, servers, tasks, config.graceful_timeout)
        await lifespan.wait_for_shutdown()
        lifespan_task.cancel()
        await asyncio.gather(lifespan_task, return_exceptions=True)


async def _tls_server(
    accepted: Accepted, context: ssl.SSLContext, sock: socket, config: HypercornConfig
) -> asyncio.Server:
    """A TLS listener. On asyncio's own loop each connection's TLS is a TLSProtocol, made
    here as the loop itself would make its SSLProtocol for ``start_server(ssl=...)``, with
    the smaller buffer; uvloop has TLS of its own."""
    loop = asyncio.get_running_loop()
    if not isinstance(loop, BaseSelectorEventLoop):
        return await asyncio.start_server(
            accepted,
            backlog=config.backlog,
            ssl=context,
            sock=sock,
            ssl_handshake_timeout=config.ssl_handshake_timeout,
        )

    def tls_protocol() -> TLSProtocol:
        stream = asyncio.StreamReaderProtocol(asyncio.StreamReader(), accepted)
        handshake: asyncio.Future[None] = loop.create_future()  # the loop awaits its own;
        handshake.add_done_callback(_seen)  # a failed one is the client's, and not logged
        return TLSProtocol(
            loop,
            stream,
            context,
            handshake,
            server_side=True,
            # seconds, a float (typeshed says int)
            ssl_handshake_timeout=config.ssl_handshake_timeout,  # type: ignore[arg-type]
        )

    return await loop.create_server(tls_protocol, sock=sock, backlog=config.backlog)


def _seen(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


async def _drain(
    context: WorkerContext,
    servers: list[asyncio.Server],
    tasks: set[asyncio.Task[None]],
    timeout: float,
) -> None:
    """Tell the connections the worker stops, close the listeners, and give the connections
    (and the QUIC servers) ``timeout`` seconds to end; cancel those still open then."""
    await context.terminated.set()
    for server in servers:
        server.close()
        await server.wait_closed()
    pending = set(tasks)
    if not pending:
        return
    _, late = await asyncio.wait(pending, timeout=timeout)
    for task in late:
        task.cancel()
    if late:
        log.info(
            "stopping: %d connection task(s) still open after %.0f s, closed", len(late), timeout
        )
        await asyncio.wait(late, timeout=1.0)


async def _quic(
    app: AppWrapper,
    config: HypercornConfig,
    context: WorkerContext,
    state: LifespanState,
    sock: socket,
) -> asyncio.Task[None]:
    """HTTP/3 on ``sock``: hello's QUIC server (wire/quic.py), its task."""
    from hello.wire.quic import QuicServer

    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(
        lambda: QuicServer(app, loop, config, context, state), sock=sock
    )
    return loop.create_task(protocol.run())


async def _running(config: HypercornConfig, scheme: str, sock: socket, what: str = "") -> None:
    """The line that says a listener serves (tests and people wait for it)."""
    bind = repr_socket_addr(sock.family, sock.getsockname())
    await config.log.info(f"Running on {scheme}://{bind}{what} (CTRL + C to quit)")
