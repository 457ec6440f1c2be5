"""What a connection and its protocols know of each other, said once and called explicitly.

A connection (tcp.py) serves its client with one protocol at a time (choice.py): hello's own
HTTP/1.1 and HTTP/2 drivers (h1.py, http2.py), the h2 engine (h2.py), or, after an Upgrade,
Hypercorn's h11 protocol. hello's are ``Driver``s: the connection asks them whether a request
is under way or owes body bytes, hands them the reading, tells them the worker stops and
releases them at the end. Hypercorn's protocols are asked through Hypercorn's own interface.

hello's drivers call the apps within the stack (``Served.stack``: stack/build.py's ``Stack``)
and read the server's configuration (``Config``: wire/config.py's).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hypercorn.typing import AppWrapper

from hello.stack.build import Stack
from hello.wire.reading import Meter


@dataclass(frozen=True)
class Served:
    """What a worker serves: the stack, and the same as Hypercorn's protocols call it."""

    wrapped: AppWrapper  # the whole stack, wrapped as Hypercorn's protocols take it
    stack: Stack


class Driver:
    """One of hello's protocols, as its connection asks it things."""

    @property
    def busy(self) -> bool:
        """Whether a request is under way (or has begun to arrive)."""
        raise NotImplementedError

    @property
    def awaiting_body(self) -> bool:
        """Whether the client owes request body bytes right now."""
        raise NotImplementedError

    async def read_directly(
        self, transport: asyncio.Transport, reader: asyncio.StreamReader, meter: Meter | None
    ) -> asyncio.StreamReader | None:
        """Take the reading over (reading.py), after what ``reader`` holds; the reader to
        wait on for the connection's end. None: the connection reads for this protocol,
        handing it each chunk."""
        return None

    async def shutting_down(self) -> None:
        """The worker stops: say so to the client, where the protocol can (GOAWAY)."""

    def release(self) -> None:
        """The connection has ended: break the reference cycles of the protocol's state.
        Called once."""
