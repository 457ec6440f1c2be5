"""Which protocol serves a connection, and the engines behind each, chosen once per process.

A TLS connection that negotiated ``h2`` (ALPN) is HTTP/2 from its first byte; every other one
starts as HTTP/1.1 and may turn into HTTP/2 on its first request: an h2c Upgrade, or the
prior-knowledge preface, each seen by h11 (h1.py hands such a connection to it) and raised
as Hypercorn's H2CProtocolRequiredError or H2ProtocolAssumedError, with the bytes read so
far. ``Protocols`` catches them and goes on with the HTTP/2 engine.

The engines: HTTP/1.1 on httptools, or h11 where httptools cannot be imported, each behind
the one driver (h1.py, h1_parsers.py), which hands upgrades to Hypercorn's h11 protocol
(h11.py); HTTP/2 on ngh2 (http2.py), or h2 (h2.py) where ngh2 cannot be imported or
``--http2-engine h2`` says so.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from hypercorn.events import Event, RawData
from hypercorn.protocol.h11 import H2CProtocolRequiredError, H2ProtocolAssumedError
from hypercorn.typing import ConnectionState, TaskGroup, WorkerContext

from hello.wire.config import HypercornConfig
from hello.wire.driver import Served

# (served, config, context, task_group, state, ssl, client, server, send, writer)
Build = Callable[..., Any]


@dataclass(frozen=True)
class Engines:
    """The protocols of this process, one for HTTP/1.1 and one for HTTP/2, and the names
    of their engines (httptools or h11; ngh2 or h2)."""

    http1: Build
    http2: Build
    http1_name: str = "httptools"
    http2_name: str = "ngh2"


def choose_engines(http2_engine: str = "auto", http1_engine: str = "auto") -> Engines:
    """The engines for ``--http2-engine`` (ngh2, h2, or auto: ngh2 where it imports; a
    ConfigError for ngh2 where it cannot be imported) and for HTTP/1.1 (httptools where it
    imports, or h11)."""
    from hello.wire import h11
    from hello.wire.h1 import H1Protocol
    from hello.wire.h1_parsers import parser_engine
    from hello.wire.http2 import H2Protocol
    from hello.wire.http2_engines import http2_engine as engine_for

    parser = parser_engine(http1_engine)
    engine = engine_for(http2_engine)

    def http1(served: Served, *args: Any) -> Any:
        # After an Upgrade, Hypercorn's h11 protocol: the stack as Hypercorn calls it.
        *common, _ = args  # the writer, which Hypercorn's protocol finds itself

        def upgraded() -> Any:
            return h11.H11Protocol(served.wrapped, *common)

        return H1Protocol(served, *args, parser=parser, fallback=upgraded)

    def http2(*args: Any) -> Any:
        return H2Protocol(*args, engine=engine)

    return Engines(http1, http2, parser.name, engine.name)


def engines() -> list[tuple[str, str, str | None]]:
    """(protocol, library, its version) for the engine serving each protocol by default; the
    version None for HTTP/3 when aioquic is not installed."""
    from hello.wire.h1_parsers import parser_engine

    rows: list[tuple[str, str, str | None]] = []
    for role, choices in (
        ("HTTP/1.1", (parser_engine().name,)),
        ("HTTP/2", ("ngh2", "h2")),
        ("HTTP/3", ("aioquic",)),
    ):
        for library in choices:
            try:
                rows.append((role, library, importlib.metadata.version(library)))
                break
            except importlib.metadata.PackageNotFoundError:
                continue
        else:
            rows.append((role, choices[-1], None))
    return rows


class Protocols:
    """A connection's protocol: HTTP/1.1 or HTTP/2 as ALPN says, HTTP/2 after an h2c Upgrade
    or preface. ``protocol`` is the one serving now."""

    def __init__(
        self,
        engines: Engines,
        served: Served,
        config: HypercornConfig,
        context: WorkerContext,
        task_group: TaskGroup,
        state: ConnectionState,
        ssl: bool,
        client: tuple[str, int] | None,
        server: tuple[str, int] | None,
        send: Callable[[Event], Awaitable[None]],
        writer: asyncio.StreamWriter | None,
        alpn_protocol: str | None,
    ) -> None:
        self.engines = engines
        self.args = (served, config, context, task_group, state, ssl, client, server, send, writer)
        build = engines.http2 if alpn_protocol == "h2" else engines.http1
        self.protocol: Any = build(*self.args)

    async def initiate(self) -> None:
        await self.protocol.initiate()

    async def handle(self, event: Event) -> None:
        try:
            await self.protocol.handle(event)
        except H2ProtocolAssumedError as error:  # the prior-knowledge preface
            await self._to_http2(error.data)
        except H2CProtocolRequiredError as error:  # Upgrade: h2c; the request is stream 1
            await self._to_http2(error.data, error.headers, error.settings)

    async def _to_http2(
        self,
        data: bytes,
        headers: list[tuple[bytes, bytes]] | None = None,
        settings: bytes | None = None,
    ) -> None:
        self.protocol = self.engines.http2(*self.args)
        if headers is None:
            await self.protocol.initiate()
        else:
            await self.protocol.initiate(headers, settings)
        if data:
            await self.protocol.handle(RawData(data=data))
