"""A connection's objects go when it ends, by reference counting alone: the garbage collector
is off while these run. Otherwise an ended connection's engine state and buffers waited for
the next full collection, minutes apart under load (scripts/soak).

The server runs in this process (hello's worker loop, server/serve.py, on a loop in a thread,
real sockets and TLS) so that the test can hold weak references to each
connection's server and protocol objects, and see them die."""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest

from hello.asgi_types import Receive, Scope, Send
from hello.config.load import load
from hello.server.serve import serve
from hello.server.sockets import bind_sockets
from hello.tls.reload import CertificateReloader
from hello.wire import tcp
from hello.wire.choice import choose_engines
from hello.wire.config import HypercornConfig
from tests.conftest import Certs
from tests.inprocess import served
from tests.support import poll

CONNECTIONS = 20


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    headers = [(b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


@dataclass
class InProcess:
    """hello's wire serving ``app`` in this process, on a loop in a thread."""

    port: int
    tls: bool
    loop: asyncio.AbstractEventLoop
    seen: list[weakref.ref[Any]] = field(default_factory=list)

    def watch_open(self) -> int:
        """Take weak references to the open connections' server and protocol objects (on
        the server's loop); return how many connections are open."""

        async def take() -> int:
            for connection in tcp.OPEN:
                self.seen.append(weakref.ref(connection))
                choice = connection.protocol
                first, last = connection._first, getattr(choice, "protocol", None)
                for protocol in (first,) if last is first else (first, last):
                    if protocol is not None:
                        self.seen.append(weakref.ref(protocol))
            return len(tcp.OPEN)

        return asyncio.run_coroutine_threadsafe(take(), self.loop).result(5)

    def alive(self) -> list[str]:
        """The module-qualified class names of the watched objects still alive."""
        alive = [obj for ref in self.seen if (obj := ref()) is not None]
        return [f"{type(obj).__module__}.{type(obj).__name__}" for obj in alive]


@contextmanager
def serving(certs: Certs, tls: bool, engine: str = "auto") -> Iterator[InProcess]:
    """hello's worker loop on HTTP/2 ``engine``, in this process, with the collector off."""
    flags: dict[str, Any] = {"bind": "127.0.0.1:0"}
    if tls:
        flags |= {"certfile": str(certs.certfile), "keyfile": str(certs.keyfile)}
    settings = load(flags=flags)
    config = HypercornConfig(settings)
    if tls:
        config.reloader = CertificateReloader(settings)
    sockets = bind_sockets(settings)
    port = (
        sockets.secure_sockets[0].getsockname()[1]
        if tls
        else sockets.insecure_sockets[0].getsockname()[1]
    )
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    serving = serve(
        served(app, settings),
        config,
        settings,
        choose_engines(engine),
        sockets,
        stop.wait,
    )
    thread = threading.Thread(target=loop.run_until_complete, args=(serving,), daemon=True)
    gc.collect()
    gc.disable()
    try:
        thread.start()
        listener = (sockets.secure_sockets or sockets.insecure_sockets)[0]
        poll(
            lambda: listener.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN),
            "the server listens",
            10,
        )
        yield InProcess(port, tls, loop)
    finally:
        gc.enable()
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()


def connect(server: InProcess, certs: Certs, alpn: str) -> socket.socket:
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    if not server.tls:
        return raw
    context = certs.client_context()
    context.set_alpn_protocols([alpn])
    wrapped = context.wrap_socket(raw, server_hostname="localhost")
    assert wrapped.selected_alpn_protocol() == alpn
    return wrapped


def http1(sock: socket.socket) -> None:
    sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n" * 2)
    data = b""
    while data.count(b"HTTP/1.1 200") < 2 or not data.endswith(b"ok"):
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk


def http2(sock: socket.socket, upgrade: bool = False) -> None:
    """Three requests over HTTP/2 (four by Upgrade, the first being the HTTP/1.1 one)."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    rest = b""
    if upgrade:  # h2c by Upgrade: the request is stream 1, answered over HTTP/2
        settings = client.initiate_upgrade_connection()
        assert settings is not None
        sock.sendall(
            b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: " + settings + b"\r\n\r\n"
        )
        while b"\r\n\r\n" not in rest:
            chunk = sock.recv(65536)
            assert chunk, f"closed after {rest!r}"
            rest += chunk
        head, _, rest = rest.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
    else:
        client.initiate_connection()
    headers = [(":method", "GET"), (":scheme", "https"), (":authority", "localhost")]
    for _ in range(3):
        stream_id = client.get_next_available_stream_id()
        client.send_headers(stream_id, [*headers, (":path", "/")], end_stream=True)
    sock.sendall(client.data_to_send())
    ended, expected = 0, 4 if upgrade else 3
    while ended < expected:
        data = rest or sock.recv(65536)
        rest = b""
        assert data, "the server closed the connection"
        events = client.receive_data(data)
        ended += sum(isinstance(event, h2.events.StreamEnded) for event in events)
        sock.sendall(client.data_to_send())


CASES = {
    "http/1.1": lambda sock: http1(sock),
    "h2": lambda sock: http2(sock),
    "h2c upgrade": lambda sock: http2(sock, upgrade=True),
}


@pytest.mark.parametrize(
    ("tls", "case", "engine"),
    [
        (False, "http/1.1", "ngh2"),
        (False, "h2", "ngh2"),
        (False, "h2c upgrade", "ngh2"),
        (True, "http/1.1", "ngh2"),
        (True, "h2", "ngh2"),
        (False, "h2", "h2"),
        (True, "h2", "h2"),
    ],
    ids=["http/1.1", "h2c", "h2c upgrade", "https/1.1", "h2 over tls", "h2c on h2", "h2 on h2"],
)
def test_an_ended_connection_is_freed_without_the_garbage_collector(
    certs: Certs, tls: bool, case: str, engine: str
) -> None:
    with serving(certs, tls, engine) as server:
        alpn = "h2" if case == "h2" else "http/1.1"
        sockets = [connect(server, certs, alpn) for _ in range(CONNECTIONS)]
        for sock in sockets:
            CASES[case](sock)
        assert server.watch_open() == CONNECTIONS
        assert len(server.seen) >= 2 * CONNECTIONS  # a connection and a protocol (or two) each
        engines = {name for name in server.alive() if name.endswith(".H2Protocol")}
        assert engines == ({"hello.wire.http2.H2Protocol"} if case != "http/1.1" else set())
        for sock in sockets:
            sock.close()
        poll(lambda: server.watch_open() == 0, "the server sees every connection end", 10)
        poll(lambda: not server.alive(), "the ended connections' objects are freed", 10)
        assert not gc.isenabled()


def _globals() -> dict[str, int]:
    """The identity of every global of the packages hello's wire once changed (Hypercorn's
    protocols and servers, h2's header checks, asyncio's TLS protocol)."""
    import asyncio.sslproto

    import h2.utilities
    import hypercorn.asyncio.run
    import hypercorn.protocol

    owners: dict[str, Any] = {
        "hypercorn.protocol": hypercorn.protocol,
        "hypercorn.asyncio.run": hypercorn.asyncio.run,
        "h2.utilities": h2.utilities,
        "asyncio.sslproto.SSLProtocol": asyncio.sslproto.SSLProtocol,
    }
    return {
        f"{where}.{name}": id(value)
        for where, owner in owners.items()
        for name, value in vars(owner).items()
    }


def test_serving_changes_no_other_package_and_tls_reads_into_a_small_buffer(
    certs: Certs,
) -> None:
    """hello's worker loop serves HTTP/1.1, HTTP/2 and TLS with every global of Hypercorn,
    h2 and asyncio as those packages left them; each TLS connection on asyncio's loop reads
    into a buffer of TLS_READ_BUFFER, not asyncio's 256 KiB."""
    from hello.server.serve import TLS_READ_BUFFER, TLSProtocol

    before = _globals()
    with serving(certs, tls=True) as server:
        with connect(server, certs, "h2") as h2_sock, connect(server, certs, "http/1.1") as h1:
            http2(h2_sock)
            http1(h1)

            async def buffers() -> list[int]:
                # asyncio's TLS transport keeps its protocol in _ssl_protocol (no public name)
                return [
                    len(connection.writer.transport._ssl_protocol._ssl_buffer)  # type: ignore[attr-defined]
                    for connection in tcp.OPEN
                    if isinstance(connection.writer.transport._ssl_protocol, TLSProtocol)  # type: ignore[attr-defined]
                ]

            sizes = asyncio.run_coroutine_threadsafe(buffers(), server.loop).result(5)
    assert sizes == [TLS_READ_BUFFER] * 2
    assert _globals() == before
