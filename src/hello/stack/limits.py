"""431 for a request head over the limit, on every protocol.

hello's HTTP/1.1 protocol on httptools measures a head as it arrives (wire/h1.py) and calls the
app beneath this layer. Everything else is measured here, in the ASGI stack, which ``hypercorn
hello.asgi:app`` serves too: HTTP/2 and HTTP/3 headers arrive already decoded, and h11 (the
HTTP/1.1 engine without httptools, and for upgrades) bounds only a head that arrives in pieces,
not one that comes whole in a single read.
"""

from __future__ import annotations

from hello.asgi_types import ASGIApp, Receive, Scope, Send
from hello.responses import send_text


class HeaderLimit:
    """431 for a request head over ``limit`` bytes, counted as hello's HTTP/1.1 protocol
    counts it: the path and each header's name and value, four bytes more each."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = len(scope.get("raw_path") or b"") + sum(
                len(name) + len(value) + 4 for name, value in scope["headers"]
            )
            if size > self.limit:
                await send_text(send, 431, "Request Header Fields Too Large")
                return
        await self.app(scope, receive, send)
