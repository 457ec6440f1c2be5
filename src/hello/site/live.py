"""The index page's live view: this process's state, sent over a WebSocket once a second.

``/live`` sends one JSON object a second: ``time`` (the scheduled task's last recorded time),
``protocol`` (what the WebSocket itself came over: ``HTTP/1.1``, or ``HTTP/2`` by RFC 8441),
``requests`` (HTTP requests this process has served for the site) and ``uptime`` (seconds).
When the process starts to drain, the socket is closed with 1001 (going away), so a reload
or a stop does not wait on open pages; the page reconnects to a fresh worker.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from quart import Blueprint, websocket

from hello.asgi_types import ASGIApp, Receive, Scope, Send
from hello.ops.lifecycle import Lifecycle
from hello.site.clock import Clock

TICK = 1.0  # seconds between messages
GOING_AWAY = 1001


class SiteStats:
    """What the live view reports about this process."""

    def __init__(self) -> None:
        self.requests = 0
        self.started = time.monotonic()

    def counting(self, app: ASGIApp) -> ASGIApp:
        """``app``, with each HTTP request counted (WebSockets and lifespan are not)."""

        async def counted(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                self.requests += 1
            await app(scope, receive, send)

        return counted

    def snapshot(self, clock: Clock, http_version: str) -> dict[str, Any]:
        return {
            "time": clock.now.isoformat(timespec="seconds") if clock.now else None,
            "protocol": f"HTTP/{http_version}",
            "requests": self.requests,
            "uptime": int(time.monotonic() - self.started),
        }


def create_live_blueprint(stats: SiteStats, clock: Clock, lifecycle: Lifecycle) -> Blueprint:
    live = Blueprint("live", __name__)

    @live.websocket("/live")
    async def updates() -> None:
        while not lifecycle.draining:
            await websocket.send_json(stats.snapshot(clock, websocket.http_version))
            await asyncio.sleep(TICK)
        await websocket.close(GOING_AWAY, "the server is restarting")

    return live
