"""Running a WSGI app from the event loop: one pool thread per request, one hand-off each way.

a2wsgi's bridge crosses threads and waits for the loop for every piece of a response: the
call, ``start_response``, each body chunk and the end, each a round trip through
``run_coroutine_threadsafe``. Here a request's body is already whole (``mounts.WSGIMount``
buffers it first), so the thread runs the app and its iterable from start to finish and hands
what it produces to the loop through a locked list. The loop is woken only when it is waiting
(a small response is usually one wake-up in all) and the thread waits only when the loop is
behind by more than ``HIGH_WATER`` bytes, which is the response's backpressure.

PEP 3333 as servers apply it: the status and headers go out with the first non-empty body
chunk (or at the end), so ``start_response`` may be called again with ``exc_info`` until then,
and re-raises it after; ``write()`` works; ``close()`` is always called, in the app's thread.
A response that is still streaming has its client watched: once the client goes, the app's
iterable is not advanced again, and is closed.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

from a2wsgi.wsgi import build_environ

from hello.asgi_types import Receive, Scope, Send
from hello.heads import ResponseError, check_head

WSGIApp = Any  # PEP 3333 callables are too loosely typed to describe usefully here
HIGH_WATER = 256 * 1024  # response bytes the loop may be behind before the app's thread waits


class _End:
    """The last item of an exchange: ``error`` is what the app raised, if it did."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class _Start:
    def __init__(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.status = status
        self.headers = headers


Item = _Start | bytes | _End


class Exchange:
    """What one call of the app produces, passed from its thread to the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.lock = threading.Lock()
        self.items: list[Item] = []
        self.buffered = 0
        self.waiter: asyncio.Future[None] | None = None
        self.room = threading.Event()  # clear while the loop is behind by over HIGH_WATER
        self.room.set()
        self.cancelled = False  # the client went, or the request was cancelled: stop the app
        self.start: _Start | None = None  # given by start_response, not yet sent
        self.started = False  # the status and headers went to the loop

    # --- in the app's thread ---

    def run(self, app: WSGIApp, environ: dict[str, Any]) -> None:
        error: Exception | None = None
        try:
            result: Iterable[bytes] = app(environ, self.start_response)
            try:
                for chunk in result:
                    if chunk:
                        self.write(chunk)
                    if self.cancelled:
                        break
                if not self.started and not self.cancelled:
                    self._put(self._head(), 0)
            finally:
                close: Callable[[], object] | None = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception as raised:  # handed to the loop and raised there
            error = raised
        finally:
            self._put([_End(error)], 0)

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.started:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # no reference cycle through the traceback
        elif self.start is not None:
            raise RuntimeError("start_response was called twice without exc_info")
        code = status.split(" ", 1)[0]
        if len(code) != 3 or not code.isdigit():
            raise ResponseError(f"the WSGI app gave an invalid status line {status!r}")
        try:
            encoded = [
                (n.lower().encode("latin-1"), v.strip().encode("latin-1")) for n, v in headers
            ]
        except UnicodeEncodeError as error:
            raise ResponseError(f"a header the WSGI app gave is not latin-1: {error}") from None
        check_head(int(code), encoded)  # PEP 3333: an error here is raised to the app
        self.start = _Start(int(code), encoded)
        return self.write

    def write(self, chunk: bytes) -> None:
        items: list[Item] = [] if self.started else self._head()
        items.append(bytes(chunk))
        self._put(items, len(chunk))

    def _head(self) -> list[Item]:
        if self.start is None:
            raise RuntimeError("the WSGI app returned a body before calling start_response")
        self.started = True
        return [self.start]

    def _put(self, items: list[Item], size: int) -> None:
        with self.lock:
            self.items += items
            self.buffered += size
            waiter, self.waiter = self.waiter, None
            full = self.buffered > HIGH_WATER
            if full:
                self.room.clear()
        if waiter is not None:
            try:
                self.loop.call_soon_threadsafe(_wake, waiter)
            except RuntimeError:  # the loop is closed: the server is gone
                self.cancelled = True
                return
        if full and not self.cancelled:
            self.room.wait()

    # --- on the loop ---

    async def take(self) -> list[Item]:
        """Everything produced since the last take, waiting for something if need be."""
        while True:
            with self.lock:
                if self.items:
                    items, self.items = self.items, []
                    self.buffered = 0
                    self.room.set()
                    return items
                self.waiter = waiter = self.loop.create_future()
            await waiter

    def cancel(self) -> None:
        self.cancelled = True
        self.room.set()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class WSGIBridge:
    """An ASGI app calling ``app`` in a pool of ``threads`` threads, for a complete ``body``."""

    def __init__(self, app: WSGIApp, threads: int) -> None:
        self.app = app
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="wsgi")

    async def __call__(self, scope: Scope, body: IO[bytes], receive: Receive, send: Send) -> None:
        environ: dict[str, Any] = dict(build_environ(scope, body))  # type: ignore[arg-type]
        environ["wsgi.errors"] = sys.stderr
        environ["wsgi.input_terminated"] = True  # the body is whole: reading to EOF is safe
        exchange = Exchange(asyncio.get_running_loop())
        context = contextvars.copy_context()
        self.executor.submit(context.run, exchange.run, self.app, environ)
        watcher: asyncio.Future[None] | None = None
        ended = False  # the last body message went out
        try:
            while True:
                items = await exchange.take()
                for index, item in enumerate(items):
                    if isinstance(item, _End):
                        if item.error is not None:
                            raise item.error
                        if exchange.started and not ended and not exchange.cancelled:
                            await send({"type": "http.response.body", "body": b""})
                        return
                    if exchange.cancelled:
                        continue  # nobody to send to; wait for the app's thread to finish
                    if isinstance(item, _Start):
                        await send(
                            {
                                "type": "http.response.start",
                                "status": item.status,
                                "headers": item.headers,
                            }
                        )
                        continue
                    following = items[index + 1] if index + 1 < len(items) else None
                    ended = isinstance(following, _End) and following.error is None
                    await send({"type": "http.response.body", "body": item, "more_body": not ended})
                if watcher is None:  # still running after a first batch: mind the client
                    watcher = asyncio.ensure_future(_until_disconnect(receive, exchange))
        finally:
            exchange.cancel()
            if watcher is not None:
                watcher.cancel()


async def _until_disconnect(receive: Receive, exchange: Exchange) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    exchange.cancel()
