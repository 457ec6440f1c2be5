"""One lifespan for several ASGI apps: the server's startup and shutdown reach every one.

The root app (APP, or the bundled Quart app) and every mounted ASGI app get their own lifespan
events, startup before the server accepts requests and shutdown after it stops. An app that
does not speak the lifespan protocol (it raises or returns at once, as Django's ASGIHandler
does) is simply left out; one whose startup fails fails the whole start, with its message.
Once every app has started, ``lifecycle.started`` is set and /readyz answers 200.

The group is the stack's outermost layer, so it is also where a response the protocol refused
(``heads.ResponseError``) ends: one ERROR line naming the app at fault, never a traceback. The
protocol ends the exchange (a 500, or a close), as after any app that returns without a
whole response.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from hello.asgi_types import ASGIApp, Message, Receive, Scope, Send
from hello.heads import ResponseError
from hello.ops.lifecycle import Lifecycle

log = logging.getLogger("hello")


class LifespanGroup:
    """``app`` for requests; for the lifespan, the lifespans of ``apps`` run together."""

    def __init__(
        self, app: ASGIApp, apps: Sequence[tuple[str, ASGIApp]], lifecycle: Lifecycle
    ) -> None:
        self.app = app
        self.apps = list(apps)
        self.lifecycle = lifecycle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            try:
                await self.app(scope, receive, send)
            except ResponseError as error:
                log.error("%s %s: response refused: %s", scope.get("method"), scope["path"], error)
            return
        children = [_Child(name, app, scope) for name, app in self.apps]
        for phase, order in (("startup", children), ("shutdown", children[::-1])):
            message = await receive()
            assert message["type"] == f"lifespan.{phase}", message
            if phase == "shutdown" and self.lifecycle.quiesce is not None:
                await self.lifecycle.quiesce()  # the last requests end before the apps do
            failures = [f for child in order if (f := await child.step(phase)) is not None]
            if failures:
                await send({"type": f"lifespan.{phase}.failed", "message": "; ".join(failures)})
                for child in children:
                    child.cancel()
                return
            self.lifecycle.started = phase == "startup"
            await send({"type": f"lifespan.{phase}.complete"})
        for child in children:
            await child.finish()


class _Child:
    """One app's lifespan, run in its own task and driven a phase at a time."""

    def __init__(self, name: str, app: ASGIApp, scope: Scope) -> None:
        self.name = name
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.outbox: asyncio.Queue[Message] = asyncio.Queue()
        self.supported = True
        self.task = asyncio.ensure_future(self._run(app, scope))

    async def _run(self, app: ASGIApp, scope: Scope) -> None:
        try:
            await app({**scope, "state": scope.get("state", {})}, self.inbox.get, self.outbox.put)
        except Exception as error:
            await self.outbox.put({"type": "hello.lifespan.raised", "error": repr(error)})
        else:
            await self.outbox.put({"type": "hello.lifespan.returned"})

    async def step(self, phase: str) -> str | None:
        """Send ``phase``; None when it went well (or the app has no lifespan), else why not."""
        if not self.supported:
            return None
        await self.inbox.put({"type": f"lifespan.{phase}"})
        reply = await self.outbox.get()
        if reply["type"] == f"lifespan.{phase}.complete":
            return None
        if reply["type"] == f"lifespan.{phase}.failed":
            return f"{self.name}: {reply.get('message', '')}"
        if phase == "startup":
            self.supported = False
            log.debug("%s does not use the lifespan protocol (%s)", self.name, reply)
            return None
        return f"{self.name}: lifespan ended during {phase} ({reply.get('error', 'returned')})"

    def cancel(self) -> None:
        self.task.cancel()

    async def finish(self) -> None:
        try:
            await asyncio.wait_for(self.task, 5)
        except (TimeoutError, asyncio.CancelledError):
            pass
