"""Fixes to Hypercorn's protocol classes, installed by the server before it starts serving.

Kept apart, subclass by subclass, so each can be dropped (or offered upstream) on its own.

``H2Protocol``: when a worker is shutting down, Hypercorn closes an HTTP/2 connection (GOAWAY,
then the socket) as soon as its last stream is handed back by the app, while the sending task
may still owe that stream its END_STREAM flag: the final response arrives with all its bytes
but never ends. Here the close waits, briefly, for that last flag to go out.
"""

from __future__ import annotations

import asyncio

import hypercorn.protocol
from hypercorn.protocol.events import Event as StreamEvent
from hypercorn.protocol.events import StreamClosed
from hypercorn.protocol.h2 import H2Protocol as _HypercornH2Protocol

END_STREAM_WAIT = 1.0  # seconds a closing connection waits for its last END_STREAM


class H2Protocol(_HypercornH2Protocol):
    async def stream_send(self, event: StreamEvent) -> None:
        if isinstance(event, StreamClosed) and self.context.terminated.is_set():
            await self._until_stream_ended(event.stream_id)
        await super().stream_send(event)

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


def install() -> None:
    """Make Hypercorn's connections use the classes above."""
    hypercorn.protocol.H2Protocol = H2Protocol  # type: ignore[attr-defined]
