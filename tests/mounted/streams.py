"""A bare ASGI app for the HTTP/1.1 wire tests: a streamed response, a body echo, a WebSocket,
and requests that wait for another: ``/hold/NAME`` takes the first chunk of its body, then
waits for a request to ``/release/NAME``; ``/late/NAME`` waits for it too, then answers
without reading its body. ``/send/NAME?size=N&chunk=M`` sends N bytes in chunks of M, then
its end; ``/ending/NAME`` answers once it is sending that end (no other task runs before the
server has taken it), ``/state/NAME`` at once: ``ending`` once it is, else ``sending``.
``/trailers/NAME`` sends a body, then the trailer ``x-checksum``."""

import asyncio
from collections import defaultdict
from typing import Any
from urllib.parse import parse_qs

RELEASED: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
ENDING: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        message = await receive()
        await send({"type": "websocket.send", "text": "echo: " + message.get("text", "")})
        await send({"type": "websocket.close", "code": 1000})
        return
    if scope["type"] != "http":
        return
    _, _, action, name = (scope["path"].split("/") + ["", ""])[:4]
    if action == "release":
        RELEASED[name].set()
    if action == "send":
        query = {key: int(values[0]) for key, values in parse_qs(scope["query_string"]).items()}
        size, chunk = query[b"size"], query[b"chunk"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for start in range(0, size, chunk):
            part = b"x" * min(chunk, size - start)
            await send({"type": "http.response.body", "body": part, "more_body": True})
        ENDING[name].set()
        await send({"type": "http.response.body", "body": b""})
        return
    if action == "trailers":  # a body, then trailers (where the client takes them)
        head = {"type": "http.response.start", "status": 200, "headers": [], "trailers": True}
        await send(head)
        await send({"type": "http.response.body", "body": b"body", "more_body": False})
        headers = [(b"x-checksum", b"abc123")]
        await send({"type": "http.response.trailers", "headers": headers, "more_trailers": False})
        return
    if action == "ending":
        await ENDING[name].wait()
    if action == "state":
        body = b"ending" if ENDING[name].is_set() else b"sending"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
        return
    if scope["path"].endswith("/stream"):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one,", b"two,", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    size = 0
    more = action != "late"
    if not more:
        await RELEASED[name].wait()
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
        if action == "hold":
            action = ""
            await RELEASED[name].wait()
    body = str(size).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
