"""An ASGI app that keeps 4 MiB of every request it serves: a worker that leaks."""

from __future__ import annotations

from typing import Any

kept: list[bytes] = []


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    kept.append(b"x" * (4 << 20))  # written, so resident
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})
