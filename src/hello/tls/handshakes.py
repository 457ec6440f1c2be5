"""The TLS handshakes under way in this process, so that a worker that stops waits for them.

A worker told to stop closes its listeners, but a connection it accepted just before may
still be in its TLS handshake: that connection is not among the process's connections yet
(wire/tcp.py's OPEN), and exiting under it resets it. A client slow to send its Finished (a busy
client process, a long round trip) lost its connection at the generation change: one that
held its Finished back 3 s got nothing, every time (tests/test_reload.py). Each handshake
is known here from the first ``do_handshake``, which asyncio's and uvloop's TLS transports
call as they accept a connection, until it succeeds or fails; one whose client vanished
leaves with its connection's objects.
"""

from __future__ import annotations

import ssl
from weakref import WeakSet

HANDSHAKING: WeakSet[ssl.SSLObject] = WeakSet()


class TrackedSSLObject(ssl.SSLObject):
    """An SSLObject that is in HANDSHAKING while its handshake is under way."""

    def do_handshake(self) -> None:
        HANDSHAKING.add(self)
        try:
            super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise  # under way: more bytes are needed
        except BaseException:
            HANDSHAKING.discard(self)
            raise
        HANDSHAKING.discard(self)
