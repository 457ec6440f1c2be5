"""431 for a request head over the limit, on every protocol.

HTTP/1.1 heads are measured as they arrive, by the wire (wire/h1.py, or h11 under plain
Hypercorn); HTTP/2 and HTTP/3 headers arrive already decoded, so they are measured here, in the
ASGI stack, which ``hypercorn hello.asgi:app`` serves too.
"""

from __future__ import annotations

from hello.asgi_types import ASGIApp, Receive, Scope, Send
from hello.responses import send_text


class HeaderLimit:
    """431 for a request head over ``limit`` bytes: HTTP/1.1's rule (h11 enforces it there),
    applied to HTTP/2 and HTTP/3, whose headers arrive already decoded."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("http_version") in ("2", "3"):
            size = len(scope.get("raw_path") or b"") + sum(
                len(name) + len(value) + 4 for name, value in scope["headers"]
            )
            if size > self.limit:
                await send_text(send, 431, "Request Header Fields Too Large")
                return
        await self.app(scope, receive, send)
