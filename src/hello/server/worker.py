"""One serving process: the event loop, the signals that stop it, the worker loop (serve.py),
the certificate watcher and ACME renewals.

A worker that gets SIGTERM or SIGINT stops accepting, reports not-ready, lets in-flight requests
finish within ``graceful_timeout`` and returns.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import resource
import signal
import ssl
import sys
from asyncio.selector_events import BaseSelectorEventLoop
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from hypercorn.config import Sockets
from hypercorn.typing import ASGIFramework
from hypercorn.utils import wrap_app

from hello.config import Settings
from hello.errors import StartupError
from hello.ops.lifecycle import Lifecycle
from hello.ops.metrics import Metrics
from hello.server.serve import serve as serve_sockets
from hello.stack.build import Stack
from hello.tls.expiry import not_after
from hello.tls.reload import CertificateReloader
from hello.wire.choice import choose_engines
from hello.wire.config import HypercornConfig
from hello.wire.driver import Served
from hello.wire.tcp import connections_closed

log = logging.getLogger("hello")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

GC_YOUNG = 10_000  # new objects between young-generation collections (Python: 700)

KILL_MARGIN = 5.0  # seconds past graceful_timeout before a worker that hangs is killed

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Worker:
    """What a serving process needs, built once before any fork and copied into each."""

    settings: Settings
    stack: Stack
    lifecycle: Lifecycle
    sockets: Sockets
    metrics: Metrics | None = None


def _watch_certificate(settings: Settings, metrics: Metrics | None) -> None:
    """Each serving process reports the expiry of the certificate it serves."""
    if metrics is None or settings.certfile is None:
        return
    try:
        metrics.certificate_expires(not_after(settings.certfile))
    except (OSError, ValueError) as error:
        log.warning("cannot read the expiry of %s for the metrics: %s", settings.certfile, error)


def serve(worker: Worker) -> None:
    """Run one worker in this process until SIGTERM or SIGINT, then drain and return."""
    _tune_gc()
    uvloop = uvloop_module() if worker.settings.loop != "asyncio" else None
    with asyncio.Runner(loop_factory=uvloop.new_event_loop if uvloop else None) as runner:
        log.debug("event loop: %s", "uvloop" if uvloop else "asyncio")
        runner.run(_serve(worker))


def _tune_gc() -> None:
    """Take what start-up made (modules, the app, its routes and templates: most of the heap)
    out of the cyclic garbage collector's sight: each full collection would walk it all again,
    for nothing. And collect the young generation every GC_YOUNG new objects instead of 700:
    a request's short-lived objects mostly die by reference counting before a collection
    walks them. Together about 15 % less CPU per Quart page, for about 1 MB more RSS. Every
    serving process freezes its own heap, and a supervisor never does, so an app replaced on
    SIGHUP can still be collected."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG, middle, old)
    log.debug(
        "garbage collector: %d start-up objects frozen; young objects collected every %d",
        gc.get_freeze_count(),
        gc.get_threshold()[0],
    )


def uvloop_module() -> Any:
    """The uvloop module, where it is installed."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop


async def _serve(worker: Worker) -> None:
    settings, lifecycle, metrics = worker.settings, worker.lifecycle, worker.metrics
    _watch_certificate(settings, metrics)
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_exception_handler)
    stop = asyncio.Event()

    def _stop(signum: int) -> None:
        if lifecycle.draining:
            return
        lifecycle.draining = True  # /readyz answers 503 from now on
        deadline = loop.time() + settings.shutdown_delay + settings.graceful_timeout
        lifecycle.quiesce = lambda: connections_closed(deadline)
        log.info(
            "%s: shutting down; accepting for %.1f s more, then in-flight requests get "
            "%.0f s to finish",
            signal.Signals(signum).name,
            settings.shutdown_delay,
            settings.graceful_timeout,
        )
        ending.append(asyncio.ensure_future(_stop_after(settings.shutdown_delay)))

    async def _stop_after(delay: float) -> None:
        await asyncio.sleep(delay)
        await stop_accepting(worker.sockets)
        stop.set()

    ending: list[asyncio.Future[None]] = []  # the task that stops serving, held while it runs
    for signum in STOP_SIGNALS:
        on_signal(loop, signum, _stop, signum)
    config = HypercornConfig(settings)
    watching = None
    if settings.tls:
        reloader = config.reloader = CertificateReloader(settings)
        if metrics is not None:
            reloader.on_reload.append(lambda: _watch_certificate(settings, metrics))
        on_signal(loop, signal.SIGHUP, reloader.reload, "SIGHUP")
        watching = asyncio.ensure_future(reloader.watch())
    renewing = _renew(settings, reloader) if settings.acme else None
    weighing = None
    if settings.max_worker_memory:
        weighing = asyncio.ensure_future(_weigh(lifecycle, settings.max_worker_memory))
    ports = sorted({sock.getsockname()[1] for sock in worker.sockets.quic_sockets})
    if ports and settings.https_port is not None:
        ports = [settings.https_port]  # behind a port mapping: where clients reach it
    config.alt_svc_headers = [f'h3=":{port}"; ma=86400' for port in ports]
    serving = asyncio.ensure_future(
        serve_sockets(
            Served(
                wrap_app(cast(ASGIFramework, worker.stack.app), config.wsgi_max_body_size, "asgi"),
                worker.stack,
            ),
            config,
            settings,
            choose_engines(settings.http2_engine),
            worker.sockets,
            stop.wait,
        )
    )
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    for task in (watching, renewing, weighing):
        if task is not None:
            task.cancel()
    try:
        # serve() bounds the drain by graceful_timeout; this bounds serve().
        await asyncio.wait_for(serving, settings.graceful_timeout + KILL_MARGIN)
    except TimeoutError:
        log.warning("connections still open %.0f s after shutdown began; closing", KILL_MARGIN)
    except Exception as error:
        raise StartupError(f"the server stopped: {error}") from error
    for signum in (*STOP_SIGNALS, signal.SIGHUP):  # stopped: no signal may kill the exit
        signal.signal(signum, signal.SIG_IGN)


def on_signal(
    loop: asyncio.AbstractEventLoop, signum: int, callback: Callable[..., object], *args: object
) -> None:
    """Call ``callback(*args)`` on ``loop`` when ``signum`` arrives.

    A plain handler, not ``loop.add_signal_handler``: asyncio's ``remove_signal_handler``, and
    the loop's close, put back the default action before hello can set SIG_IGN, and a stop
    signal arriving in between killed the exiting process (-15): under a SIGTERM every 2 ms,
    1 stop in 40 (tests/test_server.py). This handler is replaced by SIG_IGN in one step.
    The signal interrupts the loop's wait, the handler runs in the main thread, and
    ``call_soon_threadsafe`` wakes the loop, on asyncio's loop and uvloop alike."""
    signal.signal(signum, lambda _signum, _frame: loop.call_soon_threadsafe(callback, *args))


async def stop_accepting(sockets: Sockets) -> None:
    """Stop accepting connections before serve() closes the listeners; on asyncio's loop,
    let those already accepted reach their server first.

    asyncio accepts a connection in one turn of the loop and hands it to its Server in a
    task whose first step comes on a later turn. A Server closed in between fails that
    step (an assertion, CPython gh-109564, reported only in debug mode) and the connection
    is dropped: its client is reset. At a generation change under wrk with a new connection
    for each request (2 workers, 8 SIGHUPs, ``--loop asyncio``), 6 requests were lost in 1
    run of 3; the soak lost 8 HTTP/2 connections at 1 of 23 changes. Here the listeners'
    readers are removed first: no connection is accepted from then on (the kernel keeps
    them for the other workers), and the tasks of those already accepted were scheduled
    before this coroutine's next step, so they have reached their Server when it returns.
    uvloop hands a connection to its server as it accepts it."""
    loop = asyncio.get_running_loop()
    if not isinstance(loop, BaseSelectorEventLoop):
        return
    for sock in (*sockets.secure_sockets, *sockets.insecure_sockets):
        loop.remove_reader(sock.fileno())
    await asyncio.sleep(0)  # one turn: the accepted connections' tasks take their first step


async def _weigh(lifecycle: Lifecycle, limit: int, interval: float = 1.0) -> None:
    """--max-worker-memory: past ``limit`` bytes resident, ask for a successor (once). A limit
    that a fresh worker already exceeds would replace workers forever: it is logged once,
    and this worker is left alone."""
    size, megabytes = resident_bytes(), f"{limit / 2**20:.0f} MiB"
    if size > limit:  # as the worker starts, before any request
        log.error(
            "--max-worker-memory %s is below what a fresh worker uses (%.0f MiB): "
            "workers are not replaced for their memory",
            megabytes,
            size / 2**20,
        )
        return
    while not lifecycle.recycling:
        await asyncio.sleep(interval)
        size = resident_bytes()
        if size > limit:
            lifecycle.recycle(f"uses {size / 2**20:.0f} MiB (--max-worker-memory {megabytes})")


def resident_bytes() -> int:
    """This process's resident set size: now, from /proc on Linux; elsewhere its peak."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * PAGE_SIZE
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def _renew(settings: Settings, reloader: CertificateReloader) -> asyncio.Future[None]:
    """This worker's part in keeping the ACME certificate valid (ordering, if it holds the lock)."""
    from hello.tls.acme import AcmeManager
    from hello.tls.store import CertificateStore

    manager = AcmeManager(settings, CertificateStore(settings.state_dir))
    return asyncio.ensure_future(manager.run(lambda: reloader.reload("a new ACME certificate")))


def _exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    if isinstance(context.get("exception"), ssl.SSLError):
        return  # a client's failed handshake is its own business, not a server error
    if isinstance(context.get("exception"), asyncio.CancelledError):
        # At shutdown, asyncio's streams ask each cancelled connection task for its
        # exception, which raises CancelledError inside their callback: not an error.
        return
    loop.default_exception_handler(context)
