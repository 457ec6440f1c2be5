"""HTTP/3's UDP server, stopped as soon as the worker stops and no QUIC connection is left.

Hypercorn's ``UDPServer.run`` looks at the worker's shutdown only after a datagram arrives,
so an idle ``--quic-bind`` server waited the whole graceful timeout at every SIGTERM. Here the
loop also wakes when shutdown begins, and then every ``IDLE_CHECK`` seconds: connections
without a request under way are closed (CONNECTION_CLOSE, H3_NO_ERROR), those with one are
left to finish, and the server returns once none is left.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypercorn.asyncio.task_group import TaskGroup
from hypercorn.asyncio.udp_server import UDPServer
from hypercorn.typing import ConnectionState
from hypercorn.utils import parse_socket_addr

IDLE_CHECK = 0.1  # seconds between looks at the connections once shutdown has begun
H3_NO_ERROR = 0x100


class QuicServer(UDPServer):
    _closing: set[int] | None = None  # ids of the connections closed at shutdown

    async def run(self) -> None:
        from hypercorn.protocol.quic import QuicProtocol  # aioquic: an optional extra

        assert self.transport is not None
        sock = self.transport.get_extra_info("socket")
        server = parse_socket_addr(sock.family, sock.getsockname())
        terminated = asyncio.ensure_future(self.context.terminated.wait())
        try:
            async with TaskGroup(self.loop) as task_group:
                self.protocol = QuicProtocol(
                    self.app,
                    self.config,
                    self.context,
                    task_group,
                    ConnectionState(self.state.copy()),
                    server,
                    self.protocol_send,
                )
                while not (terminated.done() and self.protocol.idle):
                    if terminated.done():
                        await self._close_idle_connections()
                    datagram = asyncio.ensure_future(self.protocol_queue.get())
                    timeout = IDLE_CHECK if terminated.done() else None
                    await asyncio.wait(
                        {datagram, terminated}, timeout=timeout, return_when="FIRST_COMPLETED"
                    )
                    if datagram.done():
                        await self.protocol.handle(datagram.result())
                    else:
                        datagram.cancel()
        finally:
            terminated.cancel()

    async def _close_idle_connections(self) -> None:
        """Close each QUIC connection that has no HTTP/3 stream under way."""
        closing = self._closing = self._closing or set()
        for connection in list(self.protocol.connections.values()):
            h3: Any = connection.h3
            if id(connection) in closing or (h3 is not None and h3.streams):
                continue  # listed once for each of its connection ids, or busy
            closing.add(id(connection))
            connection.quic.close(error_code=H3_NO_ERROR)
            await self.protocol.send_all(connection)
