"""``hello --check``: build the app from the settings and ask it for pages in-process.

For smoke tests and container health checks: no socket is opened, so it also works where the
server's port is taken or unreachable. What a start would refuse, it refuses too, with the same
line and exit code (an extra the flags need, a certificate pair that does not load). The
app's lifespan runs around the requests, as it would under a server. The bundled site must
answer / and /legacy/ with 200; a user's APP must answer / without a server error (its / may
well be a 404 or a redirect).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from hello.asgi_types import ASGIApp, Message
from hello.config import Settings
from hello.ops.lifecycle import Lifecycle
from hello.server.run import require
from hello.stack.build import build_app

SITE_PATHS = ("/", "/legacy/")


def run_check(settings: Settings, report: Callable[[str], None] = print) -> bool:
    """Report one line a path; True when every path answered as it should."""
    require(settings)  # as a start would: the extras the flags need, the certificate pair
    if settings.tls:
        report(f"tls: {settings.certfile} and {settings.keyfile} load and match")
    app = build_app(settings, Lifecycle())
    if settings.app is None:
        return asyncio.run(_check(app, SITE_PATHS, lambda status: status == 200, report))
    return asyncio.run(_check(app, ("/",), lambda status: 0 < status < 500, report))


async def _check(
    app: ASGIApp,
    paths: tuple[str, ...],
    good: Callable[[int], bool],
    report: Callable[[str], None],
) -> bool:
    lifespan: asyncio.Queue[Message] = asyncio.Queue()
    replies: asyncio.Queue[Message] = asyncio.Queue()
    await lifespan.put({"type": "lifespan.startup"})
    task: asyncio.Future[None] = asyncio.ensure_future(
        app(
            {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, lifespan.get, replies.put
        )
    )
    started = await replies.get()
    if started["type"] != "lifespan.startup.complete":
        report(f"startup failed: {started.get('message', started['type'])}")
        return False
    try:
        results = [await _get(app, path) for path in paths]
    finally:
        await lifespan.put({"type": "lifespan.shutdown"})
        await task
    for path, (status, size) in zip(paths, results, strict=True):
        report(f"GET {path} {status} ({size} bytes)")
    return all(good(status) for status, _ in results)


async def _get(app: ASGIApp, path: str) -> tuple[int, int]:
    """Status and body size of GET ``path``."""
    status = 0
    size = 0
    asked = False
    answered = asyncio.Event()

    async def receive() -> Message:
        # As from a server: the request once, then nothing until the client leaves, which it
        # does once answered. (An app watching for the disconnect must not spin on requests.)
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status, size
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                answered.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 0),
        "server": ("localhost", 80),
        "state": {},
        "extensions": {},
    }
    await app(scope, receive, send)
    return status, size
