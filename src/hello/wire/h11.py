"""HTTP/1.1 on Hypercorn's h11 protocol, where h1.py hands a connection over (an Upgrade, h2c,
or no httptools): responses at shutdown say ``Connection: close``."""

from __future__ import annotations

import h11
from hypercorn.events import Closed, Updated
from hypercorn.protocol.h11 import H11Protocol as _HypercornH11Protocol
from hypercorn.typing import H11SendableEvent


class H11Protocol(_HypercornH11Protocol):
    """Responses sent while the worker shuts down say ``Connection: close``, so a keep-alive
    client opens its next connection (to a worker that stays) instead of writing into one
    that is about to close."""

    async def _send_h11_event(self, event: H11SendableEvent) -> None:
        if isinstance(event, h11.Response) and self.context.terminated.is_set():
            if not any(name.lower() == b"connection" for name, _ in event.headers):
                event = h11.Response(
                    status_code=event.status_code,
                    headers=[*event.headers, (b"connection", b"close")],
                    reason=event.reason,
                )
        await super()._send_h11_event(event)

    async def _maybe_recycle(self) -> None:
        """Hypercorn's, except that a keep-alive response sent just before shutdown began
        does not close the connection at once: the client was told it may send another
        request, so the connection goes idle (tcp.py then gives it a moment to do so)."""
        await self._close_stream()
        connection = self.connection
        if connection.our_state is h11.DONE and connection.their_state is h11.DONE:
            try:
                connection.start_next_cycle()
            except h11.LocalProtocolError:
                await self.send(Closed())
            else:
                await self.can_read.set()
                await self.send(Updated(idle=True))
        else:
            await self.can_read.set()
            await self.send(Closed())
