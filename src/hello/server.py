"""Settings in, a serving process out: TLS checked, sockets bound, workers run, signals handled.

Everything that can be wrong with the configuration is found before the first socket listens:
the certificate pair is loaded, the app is built, then every bind is opened. One worker serves
in this process; with ``workers > 1`` this process forks them after binding (so they share the
listening sockets and the already-imported app), replaces any that die, and on SIGTERM or
SIGINT passes the signal on and waits for them. A worker that gets SIGTERM or SIGINT stops
accepting, reports not-ready, lets in-flight requests finish within ``graceful_timeout`` and
exits 0.
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import logging
import os
import shutil
import signal
import ssl
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from socket import AF_INET, AF_INET6, AF_UNIX, SOCK_DGRAM, socket
from typing import Any, cast
from wsgiref.handlers import format_date_time

from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.typing import ASGIFramework
from hypercorn.utils import wrap_app

from hello import guard, protocols
from hello.app import OWN_ROUTES, build_app, route_prefixes
from hello.asgi_types import ASGIApp
from hello.errors import ConfigError, StartupError
from hello.insecure import InsecureGate
from hello.lifecycle import Lifecycle
from hello.metrics import Metrics, start_listener
from hello.settings import Settings
from hello.tls import create_ssl_context
from hello.tls.reload import CertificateReloader

log = logging.getLogger("hello")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
H2_HEADER_LIST_FACTOR = 16
GC_YOUNG = 10_000  # new objects between young-generation collections (Python: 700)
KILL_MARGIN = 5.0  # seconds past graceful_timeout before a worker that hangs is killed


class HypercornConfig(Config):
    """Hypercorn's Config, with hello's own TLS context (protocols, ciphers, checked files)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.bind = list(settings.bind)
        self.certfile = str(settings.certfile) if settings.certfile else None
        self.keyfile = str(settings.keyfile) if settings.keyfile else None
        self.workers = settings.workers
        self.accesslog = None  # hello writes its own (observe.py): request ids, JSON
        self.errorlog = settings.error_log
        self.loglevel = settings.log_level.upper()
        self.graceful_timeout = settings.graceful_timeout
        self.wsgi_max_body_size = settings.max_body_size
        # Hypercorn closes a connection that sends no complete request head within its
        # keep-alive timeout (the timer starts with the connection and after each response).
        self.keep_alive_timeout = settings.header_timeout
        self.ssl_handshake_timeout = settings.header_timeout
        self.include_server_header = False
        self.include_date_header = False  # response_headers adds it, formatted once a second
        self.h11_max_incomplete_size = settings.max_header_size  # h11 answers 431 past it
        # HTTP/2 headers past this break the connection (HPACK cannot skip them); up to it,
        # guard.HeaderLimit answers 431 for heads over max_header_size, as HTTP/1.1 does.
        self.h2_max_header_list_size = H2_HEADER_LIST_FACTOR * settings.max_header_size
        if settings.server_header:
            self.response_headers_extra = [(b"server", settings.server_header.encode())]

    response_headers_extra: list[tuple[bytes, bytes]] = []
    _date: tuple[int, bytes] = (0, b"")

    def response_headers(self, protocol: str) -> list[tuple[bytes, bytes]]:
        second = int(time.time())
        if self._date[0] != second:
            self._date = (second, format_date_time(second).encode("ascii"))
        date = (b"date", self._date[1])
        return [date, *super().response_headers(protocol), *self.response_headers_extra]

    reloader: CertificateReloader | None = None

    def create_ssl_context(self) -> ssl.SSLContext | None:
        if self.reloader is not None:
            return self.reloader.server_context()
        return create_ssl_context(self.settings) if self.settings.tls else None


def run(settings: Settings, reread: Callable[[], Settings] | None = None) -> None:
    """Serve until told to stop. Raises ConfigError or StartupError before anything listens.

    With several workers, SIGHUP calls ``reread`` for fresh settings and replaces the workers
    with ones built from them; a single process reloads its certificate instead."""
    settings = _checked(settings)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a reload, once serving; never an exit
    protocols.install()
    _install_h1()
    guard.install()
    metrics = _metrics(settings)
    lifecycle = Lifecycle()
    app = _app(settings, lifecycle, metrics)
    sockets = bind_sockets(settings)
    if metrics is not None:
        _start_metrics(settings, metrics, sockets)
    worker = Worker(settings, _gated(settings, app, sockets), lifecycle, sockets, metrics)
    if settings.workers == 1:
        serve(worker)
    else:
        from hello.supervisor import Supervisor  # it imports Worker and serve from here

        Supervisor(worker, (lambda: _rebuilt(worker, reread())) if reread else None).run()


def _install_h1() -> None:
    """HTTP/1.1 on httptools where it is installed; Hypercorn's own h11 protocol otherwise."""
    try:
        from hello import h1
    except ImportError:
        return
    h1.install()


def _checked(settings: Settings) -> Settings:
    """``settings`` ready to serve: ACME state prepared, certificates loaded once, logging."""
    if settings.acme:
        settings = _prepare_acme(settings)
    if settings.tls:
        create_ssl_context(settings)  # a bad pair fails here, with the flag named
    if settings.quic_bind:
        _require_aioquic(settings)
    if settings.loop == "uvloop" and _uvloop() is None:
        raise ConfigError(
            f"{settings.describe('loop')}: uvloop is not installed here; install hello with "
            "the uvloop extra (pip install 'hello[uvloop]') or use --loop asyncio"
        )
    _configure_logging(settings)
    return settings


def _app(settings: Settings, lifecycle: Lifecycle, metrics: Metrics | None) -> ASGIApp:
    """The app a worker serves, before the plain-HTTP gate (which needs the bound sockets)."""
    return guard.HeaderLimit(build_app(settings, lifecycle, metrics), settings.max_header_size)


def _gated(settings: Settings, app: ASGIApp, sockets: Sockets) -> ASGIApp:
    return _insecure_gate(settings, app, sockets) if settings.insecure_bind else app


RESTART_ONLY = ("bind", "insecure_bind", "quic_bind", "metrics_bind")


def _rebuilt(current: Worker, fresh: Settings) -> Worker:
    """A Worker from re-read settings, on the listeners ``current`` already has."""
    fresh = _checked(fresh)
    for name in RESTART_ONLY:
        if getattr(fresh, name) != getattr(current.settings, name):
            log.warning("%s changed; listeners change only on a restart", fresh.describe(name))
    lifecycle = Lifecycle()
    app = _gated(fresh, _app(fresh, lifecycle, current.metrics), current.sockets)
    return Worker(fresh, app, lifecycle, current.sockets, current.metrics)


@dataclass
class Worker:
    """What a serving process needs, built once before any fork and copied into each."""

    settings: Settings
    app: ASGIApp
    lifecycle: Lifecycle
    sockets: Sockets
    metrics: Metrics | None = None


def _watch_certificate(settings: Settings, metrics: Metrics | None) -> None:
    """Each serving process reports the expiry of the certificate it serves."""
    if metrics is not None and settings.certfile is not None:
        metrics.watch_certificate(settings.certfile)


def _configure_logging(settings: Settings) -> None:
    """hello's own messages go where Hypercorn's do, in the same format and at the same level."""
    target = settings.error_log
    try:
        handler = logging.StreamHandler() if target == "-" else logging.FileHandler(target)
    except OSError as error:
        where = settings.describe("error_log")
        raise ConfigError(f"cannot open {where}: {error.strerror or error}") from None
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s [%(process)d] [%(levelname)s] %(message)s", "[%Y-%m-%d %H:%M:%S %z]"
        )
    )
    log.handlers = [handler]
    log.setLevel(settings.log_level.upper())
    log.propagate = False
    asyncio_log = logging.getLogger("asyncio")
    if not any(isinstance(f, _LostClientWrites) for f in asyncio_log.filters):
        asyncio_log.addFilter(_LostClientWrites())


class _LostClientWrites(logging.Filter):
    """Drops asyncio's warning for each write past the fifth to a connection already lost.

    A client that leaves with responses in flight (a load tester stopping, a browser tab
    closed during a download) is normal; between the failed send and the transport's
    connection_lost, writes can still reach it, and each would log this line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "socket.send() raised exception."


def _prepare_acme(settings: Settings) -> Settings:
    try:
        from hello.tls import acme
    except ImportError as error:
        raise ConfigError(
            f"{settings.describe('acme_domain')}: ACME needs the acme extra, which this "
            f"installation lacks ({error}); install hello with pip install 'hello[acme]'"
        ) from None
    _configure_logging(settings)  # what prepare() finds is worth a line
    return acme.prepare(settings)


def _insecure_gate(settings: Settings, app: ASGIApp, sockets: Sockets) -> ASGIApp:
    """Plain-HTTP listeners answer ACME challenges and redirect the rest to https."""
    port = settings.https_port
    if port is None:
        port = next(
            (sock.getsockname()[1] for sock in sockets.secure_sockets if sock.family != AF_UNIX),
            443,
        )
    return InsecureGate(app, settings.state_dir / "challenges", port)


def _require_aioquic(settings: Settings) -> None:
    try:
        import aioquic  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"{settings.describe('quic_bind')}: HTTP/3 needs aioquic, which this installation "
            "lacks; install hello with the h3 extra (pip install 'hello[h3]')"
        ) from None


def _metrics(settings: Settings) -> Metrics | None:
    if settings.metrics_bind is None:
        return None
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Every worker writes its figures here; chosen before prometheus_client is imported.
        directory = tempfile.mkdtemp(prefix="hello-metrics-")
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    return Metrics(route_prefixes(settings), OWN_ROUTES)


def _start_metrics(settings: Settings, metrics: Metrics, sockets: Sockets) -> None:
    assert settings.metrics_bind is not None
    host, _, port = settings.metrics_bind.rpartition(":")
    try:
        start_listener(metrics, host.strip("[]"), int(port))
    except OSError as error:
        for sock in [*sockets.secure_sockets, *sockets.insecure_sockets, *sockets.quic_sockets]:
            sock.close()
        raise StartupError(
            f"cannot listen on {settings.describe('metrics_bind')}: {error.strerror or error}"
        ) from None


def bind_sockets(settings: Settings) -> Sockets:
    """Open every ``--bind`` and ``--insecure-bind``; StartupError names the one that failed.
    TLS on every ``--bind`` or none."""
    opened: list[socket] = []
    insecure: list[socket] = []
    try:
        _bind_tcp(settings, "bind", opened)
        _bind_tcp(settings, "insecure_bind", insecure)
    except StartupError:
        for sock in [*opened, *insecure]:
            sock.close()
        raise
    quic = _bind_quic(settings, [*opened, *insecure])
    if settings.tls:
        return Sockets(secure_sockets=opened, insecure_sockets=insecure, quic_sockets=quic)
    return Sockets(secure_sockets=[], insecure_sockets=opened, quic_sockets=[])


def _bind_tcp(settings: Settings, name: str, opened: list[socket]) -> None:
    for bind in getattr(settings, name):
        single = Config()
        single.bind = [bind]
        single.workers = settings.workers
        try:
            opened.extend(single.create_sockets().insecure_sockets)
        except OSError as error:
            reason = error.strerror or str(error)
            raise StartupError(
                f"cannot listen on {bind} ({settings.source(name)}): {reason}"
            ) from None


def _bind_quic(settings: Settings, opened: list[socket]) -> list[socket]:
    quic: list[socket] = []
    for bind in settings.quic_bind:
        host, _, port = bind.rpartition(":")
        host = host.strip("[]")
        family = AF_INET6 if ":" in host else AF_INET
        sock = socket(family, SOCK_DGRAM)
        try:
            sock.bind((host, int(port)))
        except OSError as error:
            for other in [*opened, *quic, sock]:
                other.close()
            reason = error.strerror or str(error)
            raise StartupError(f"cannot listen on UDP {bind} (--quic-bind): {reason}") from None
        sock.setblocking(False)
        quic.append(sock)
    return quic


def serve(worker: Worker) -> None:
    """Run one worker in this process until SIGTERM or SIGINT, then drain and return."""
    _tune_gc()
    uvloop = _uvloop() if worker.settings.loop != "asyncio" else None
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


def _uvloop() -> Any:
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
        log.info(
            "%s: shutting down; accepting for %.1f s more, then in-flight requests get "
            "%.0f s to finish",
            signal.Signals(signum).name,
            settings.shutdown_delay,
            settings.graceful_timeout,
        )
        loop.call_later(settings.shutdown_delay, stop.set)

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, _stop, signum)
    config = HypercornConfig(settings)
    watching = None
    if settings.tls:
        reloader = config.reloader = CertificateReloader(settings)
        if metrics is not None:
            reloader.on_reload.append(lambda: _watch_certificate(settings, metrics))
        loop.add_signal_handler(signal.SIGHUP, reloader.reload, "SIGHUP")
        watching = asyncio.ensure_future(reloader.watch())
    renewing = _renew(settings, reloader) if settings.acme else None
    ports = sorted({sock.getsockname()[1] for sock in worker.sockets.quic_sockets})
    config.alt_svc_headers = [f'h3=":{port}"; ma=86400' for port in ports]
    serving = asyncio.ensure_future(
        worker_serve(
            wrap_app(cast(ASGIFramework, worker.app), config.wsgi_max_body_size, "asgi"),
            config,
            sockets=worker.sockets,
            shutdown_trigger=stop.wait,
        )
    )
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    for task in (watching, renewing):
        if task is not None:
            task.cancel()
    try:
        # Hypercorn bounds the drain by graceful_timeout; this bounds Hypercorn.
        await asyncio.wait_for(serving, settings.graceful_timeout + KILL_MARGIN)
    except TimeoutError:
        log.warning("connections still open %.0f s after shutdown began; closing", KILL_MARGIN)
    except Exception as error:
        raise StartupError(f"the server stopped: {error}") from error


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
