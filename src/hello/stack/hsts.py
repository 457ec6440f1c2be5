"""Strict-Transport-Security on every response over TLS (never over plain HTTP, where RFC 6797
says the header means nothing). Present only when hello serves TLS and --hsts-max-age is set."""

from __future__ import annotations

from hello.asgi_types import ASGIApp, Message, Receive, Scope, Send


class Hsts:
    def __init__(self, app: ASGIApp, max_age: int) -> None:
        self.app = app
        self.header = (b"strict-transport-security", b"max-age=%d" % max_age)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("scheme") != "https":
            await self.app(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), self.header]}
            await send(message)

        await self.app(scope, receive, secured)
