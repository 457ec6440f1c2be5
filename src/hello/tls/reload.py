"""Swapping in renewed certificates without a restart and without dropping connections.

The listeners get one SSLContext whose ``sni_callback`` (which also fires when the client
sends no server name) hands each new handshake the *current* context. Reloading builds a
complete new context from the files and only then makes it current; if the new pair is
missing, malformed or mismatched (a half-written renewal, a bad secret), the old context stays
and the reason is logged. Established connections keep the context they started with.
Reloads happen on SIGHUP and when either file changes on disk (checked every few seconds), so
a certbot renewal or a rotated Kubernetes secret is picked up by itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Callable

from hello.config import Settings
from hello.errors import CertificateError
from hello.tls.context import create_ssl_context
from hello.tls.handshakes import TrackedSSLObject

log = logging.getLogger("hello")

WATCH_INTERVAL = 2.0  # seconds between looks at the certificate files

Stamp = tuple[tuple[int, int, int] | None, ...]


class CertificateReloader:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.current = create_ssl_context(settings)
        self.stamp = self._stamp()
        self.on_reload: list[Callable[[], None]] = []

    def server_context(self) -> ssl.SSLContext:
        """The context for the listeners: each handshake is handed the current context."""
        front = create_ssl_context(self.settings)
        front.sni_callback = self._select
        front.sslobject_class = TrackedSSLObject  # a stopping worker waits for handshakes
        return front

    def _select(self, connection: ssl.SSLObject, name: str | None, front: ssl.SSLContext) -> None:
        connection.context = self.current

    def reload(self, why: str) -> bool:
        """Load the files into a new context and make it current; False (logged) if bad."""
        self.stamp = self._stamp()
        try:
            fresh = create_ssl_context(self.settings)
        except CertificateError as error:
            log.error(
                "certificate not reloaded (%s): %s; still serving the previous one", why, error
            )
            return False
        self.current = fresh
        log.info("certificate reloaded (%s) from %s", why, self.settings.certfile)
        for callback in self.on_reload:
            callback()
        return True

    async def watch(self, interval: float = WATCH_INTERVAL) -> None:
        """Reload whenever the files' inode, size or modification time changes."""
        while True:
            await asyncio.sleep(interval)
            if self._stamp() != self.stamp:
                self.reload("the files changed")

    def _stamp(self) -> Stamp:
        stamps = []
        for path in (self.settings.certfile, self.settings.keyfile):
            try:
                info = os.stat(path) if path is not None else None
            except OSError:
                info = None
            stamps.append((info.st_ino, info.st_size, info.st_mtime_ns) if info else None)
        return tuple(stamps)
