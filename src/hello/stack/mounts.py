"""Mounting apps under path prefixes, and the WSGI bridge that makes a legacy app safe to mount.

Prefixes match on whole path segments (``/legacy`` takes ``/legacy`` and ``/legacy/...``, never
``/legacyx``), longest first. A WSGI app is reached through ``wsgi.WSGIBridge``, but only after
its request body has been received in full, on the event loop: into memory up to a threshold,
then into a temporary file. So a slow upload never holds one of the app's threads, the app
always sees a terminated input with a true Content-Length (chunked HTTP/1.1 and HTTP/2 uploads
included), and no unread body is left behind to stall the connection. A body over the limit
gets 413: at once when Content-Length announces it, as soon as it is exceeded otherwise.
"""

from __future__ import annotations

import asyncio
import io
import os
import tempfile
from collections.abc import Iterable, Mapping
from typing import IO, Any

from hello.asgi_types import ASGIApp, Receive, Scope, Send
from hello.heads import ResponseError
from hello.ops.metrics import Metrics
from hello.stack.wsgi import WSGIApp, WSGIBridge

SPOOL_THRESHOLD = 1024 * 1024  # bodies above this go to a temporary file
# After a 413, what is left of the body is read and thrown away for a while (nginx's "lingering
# close"), so a client still sending sees the answer rather than a reset connection.
LINGER_BYTES = 64 * 1024 * 1024
LINGER_SECONDS = 5.0


class PrefixDispatcher:
    """Route each request to the app mounted at the longest matching prefix, else ``default``."""

    def __init__(self, default: ASGIApp, mounts: Mapping[str, ASGIApp]) -> None:
        for prefix in mounts:
            check_prefix(prefix)
        self.default = default
        self.mounts = sorted(mounts.items(), key=lambda item: len(item[0]), reverse=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            root_path: str = scope.get("root_path", "")
            path: str = scope["path"]
            relative = path[len(root_path) :] if path.startswith(root_path) else path
            for prefix, app in self.mounts:
                if relative == prefix or relative.startswith(prefix + "/"):
                    try:
                        await app({**scope, "root_path": root_path + prefix}, receive, send)
                    except ResponseError as error:
                        error.mount = error.mount or root_path + prefix
                        raise
                    return
        await self.default(scope, receive, send)


def check_prefix(prefix: str) -> None:
    """A mount prefix is ``/name`` or ``/a/b``: a leading slash, no trailing one, no empties."""
    segments = prefix.split("/")
    if not prefix.startswith("/") or len(segments) < 2 or any(not s for s in segments[1:]):
        raise ValueError(f"mount prefix {prefix!r} must look like /name (no trailing slash)")
    if any(segment in (".", "..") for segment in segments):
        raise ValueError(f"mount prefix {prefix!r} must not contain . or .. segments")


class WSGIMount:
    """An ASGI app that runs ``wsgi_app`` in a thread pool, its body buffered first."""

    def __init__(
        self,
        wsgi_app: WSGIApp,
        *,
        max_body_size: int,
        threads: int = 10,
        name: str = "",
        metrics: Metrics | None = None,
    ) -> None:
        self.bridge = WSGIBridge(wsgi_app, threads)
        self.max_body_size = max_body_size
        self.threads = threads
        self.name = name
        self.metrics = metrics
        self._reported_pid = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1000})
            return
        if scope["type"] != "http":
            return
        declared = _content_length(scope["headers"])
        if declared is not None and declared > self.max_body_size:
            await self._too_large(scope, receive, send)
            return
        first = await receive()
        if first["type"] == "http.disconnect":
            return  # the client went away; nobody is left to answer
        chunk: bytes = first.get("body", b"")
        if first.get("more_body", False):
            with tempfile.SpooledTemporaryFile(max_size=SPOOL_THRESHOLD) as spooled:
                spooled.write(chunk)
                size = await self._receive_body(receive, spooled, len(chunk))
                if size is None:
                    return
                if size > self.max_body_size:
                    await self._too_large(scope, receive, send)
                    return
                spooled.seek(0)
                await self._call(scope, size, spooled, receive, send)
        elif len(chunk) > self.max_body_size:
            await self._too_large(scope, receive, send)
        else:
            await self._call(scope, len(chunk), io.BytesIO(chunk), receive, send)

    async def _call(
        self, scope: Scope, size: int, body: IO[bytes], receive: Receive, send: Send
    ) -> None:
        headers = [
            (name, value)
            for name, value in scope["headers"]
            if name not in (b"content-length", b"transfer-encoding")
        ]
        headers.append((b"content-length", b"%d" % size))
        scope = {**scope, "headers": headers}
        if self.metrics is None:
            await self.bridge(scope, body, receive, send)
            return
        busy = self._busy_gauge(self.metrics)
        busy.inc()
        try:
            await self.bridge(scope, body, receive, send)
        finally:
            busy.dec()

    def _busy_gauge(self, metrics: Metrics) -> Any:
        if self._reported_pid != os.getpid():  # once in each worker process
            self._reported_pid = os.getpid()
            metrics.wsgi_threads.labels(self.name).set(self.threads)
        return metrics.wsgi_busy.labels(self.name)

    async def _receive_body(self, receive: Receive, body: IO[bytes], size: int) -> int | None:
        """Write the rest of the request body to ``body``; its whole size, or None on
        disconnect. Stops reading once the size passes ``max_body_size`` (the caller
        answers 413)."""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_size:
                return size
            body.write(chunk)
            if not message.get("more_body", False):
                return size

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 413 at once, then discard the rest of the body (bounded) before ending."""
        limit = self.max_body_size
        text = f"Content Too Large: the request body is over the limit of {limit} bytes\n"
        headers = [(b"content-type", b"text/plain; charset=utf-8")]
        headers.append((b"content-length", str(len(text)).encode()))
        if scope.get("http_version", "1.1") in ("1.0", "1.1"):
            headers.append((b"connection", b"close"))  # the rest of the body is not worth reading
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": text.encode(), "more_body": True})
        try:
            async with asyncio.timeout(LINGER_SECONDS):
                await _discard_body(receive, LINGER_BYTES)
        except TimeoutError:
            pass
        await send({"type": "http.response.body", "body": b""})


async def _discard_body(receive: Receive, limit: int) -> None:
    discarded = 0
    while discarded <= limit:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
        discarded += len(message.get("body", b""))


def _content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the protocol layer rejects malformed lengths before this
    return None
