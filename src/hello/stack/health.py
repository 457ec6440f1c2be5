"""The probes on the public listeners: PREFIX/healthz while the process serves, PREFIX/readyz
once started and until shutdown begins. Answered before the app, so no app can break them.

Only where the operator puts them (``--health-prefix``): an app's own /healthz stays its own.
The operations listener (--metrics-bind) always answers both (ops/listener.py).
"""

from __future__ import annotations

from hello.asgi_types import ASGIApp, Receive, Scope, Send
from hello.ops.lifecycle import Lifecycle
from hello.responses import send_text

NO_STORE = [(b"cache-control", b"no-store")]


def readiness(lifecycle: Lifecycle) -> tuple[int, str]:
    if lifecycle.ready:
        return 200, "ready"
    return 503, "shutting down" if lifecycle.draining else "starting"


class Health:
    """``app``, with GET and HEAD of ``{prefix}healthz`` and ``{prefix}readyz`` answered."""

    def __init__(self, app: ASGIApp, prefix: str, lifecycle: Lifecycle) -> None:
        self.app = app
        self.healthz = prefix + "healthz"
        self.readyz = prefix + "readyz"
        self.lifecycle = lifecycle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path == self.healthz or path == self.readyz:
                await self._answer(path, scope["method"], send)
                return
        await self.app(scope, receive, send)

    async def _answer(self, path: str, method: str, send: Send) -> None:
        if method not in ("GET", "HEAD"):
            allow = [(b"allow", b"GET, HEAD"), *NO_STORE]
            await send_text(send, 405, "Method Not Allowed", allow)
            return
        status, text = (200, "ok") if path == self.healthz else readiness(self.lifecycle)
        await send_text(send, status, text, NO_STORE, head=method == "HEAD")
