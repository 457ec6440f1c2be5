"""Reading an HTTP/1.1 connection straight from its transport, as uvicorn does.

Hypercorn reads every connection through asyncio's streams: each chunk wakes a reader task,
which awaits the protocol's ``handle``. For HTTP/1.1, ``Reading`` takes the transport's
protocol slot instead and hands each chunk to h1.py's parser in ``data_received``; no task
wakes up to read. Backpressure pauses the transport; writes wait for its resume_writing.

The connection stays Hypercorn's in every other way: its TCPServer still closes it, and waits
on a stream reader of ours (``Reading.reader``) that only learns of the connection's end. If
the first bytes ask for another protocol (WebSocket, h2c, HTTP/2 prior knowledge),
``to_stream`` puts them into that reader and from then on feeds it everything, the way
asyncio's own protocol would have.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol


class Feed(Protocol):
    """The connection's parser: h1.H1Protocol or http2.H2Protocol."""

    def feed(self, data: bytes) -> None: ...

    @property
    def awaiting_body(self) -> bool: ...


class Meter(Protocol):
    """Who keeps count of what the client sent and how long it took: tcp.Connection."""

    def received(self, size: int, awaiting_body: bool | None = None) -> None: ...

    def waiting(self) -> None: ...  # reading (again): from now on, time is the client's

    def not_waiting(self) -> None: ...  # reading paused: the server is the slow one


class Reading(asyncio.Protocol):
    """The protocol of a connection read directly; ``reader`` learns of its end."""

    def __init__(self, feed: Feed, transport: asyncio.Transport, meter: Meter | None) -> None:
        self.feed: Feed | None = feed  # None once the connection went back to a stream
        self.transport = transport
        self.stream_protocol = transport.get_protocol()  # asyncio's: its wait_closed() waits
        self.reader = asyncio.StreamReader()
        self.meter = meter
        self.paused = False
        self.writable: asyncio.Future[None] | None = None  # while the transport is full
        self.resumed: Callable[[], None] | None = None  # told when the transport takes writes

    # --- asyncio's protocol interface ---

    def data_received(self, data: bytes) -> None:
        feed = self.feed
        if feed is None:
            self.reader.feed_data(data)
            return
        feed.feed(data)
        if self.meter is not None:
            self.meter.received(len(data), feed.awaiting_body)

    def eof_received(self) -> bool:
        self.reader.feed_eof()
        return False  # the transport closes; the connection (tcp.py) sees the end and cleans up

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is None:
            self.reader.feed_eof()
        else:
            self.reader.set_exception(exc)
        self._wake_writer()
        self.stream_protocol.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.writable is None:
            self.writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self._wake_writer()
        if self.resumed is not None:
            self.resumed()

    # --- for h1.H1Protocol ---

    async def drain(self) -> None:
        """Return once the transport takes writes again (or the connection is gone)."""
        if self.writable is not None:
            await asyncio.shield(self.writable)

    def pause(self) -> None:
        if not self.paused and not self.transport.is_closing():
            self.paused = True
            self.transport.pause_reading()
            if self.meter is not None:
                self.meter.not_waiting()

    def resume(self) -> None:
        if self.paused and not self.transport.is_closing():
            self.paused = False
            self.transport.resume_reading()
            if self.meter is not None:
                self.meter.waiting()

    def to_stream(self, replay: bytes) -> None:
        """Go back to asyncio's way: ``replay`` and all that follows go to ``reader``."""
        self.feed = None
        self.resume()
        self.reader.set_transport(self.transport)  # its own backpressure from now on
        self.reader.feed_data(replay)

    def _wake_writer(self) -> None:
        writable, self.writable = self.writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)
