"""Settings in, a serving process out: TLS checked, the app built, sockets bound, workers run.

Everything that can be wrong with the configuration is found before the first socket listens:
the certificate pair is loaded, the app is built, then every bind is opened. One worker serves
in this process; with ``workers > 1`` this process forks them after binding (so they share the
listening sockets and the already-imported app), replaces any that die, and on SIGTERM or
SIGINT passes the signal on and waits for them.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Callable
from socket import AF_UNIX

from hypercorn.config import Sockets

from hello.asgi_types import ASGIApp
from hello.config import Settings
from hello.errors import ConfigError, StartupError
from hello.ops.lifecycle import Board, Lifecycle
from hello.ops.listener import start_listener
from hello.ops.metrics import Metrics
from hello.server.reloader import Reloader, watched
from hello.server.sockets import bind_sockets
from hello.server.supervisor import Supervisor
from hello.server.worker import Worker, serve, uvloop_module
from hello.stack.build import Stack, build_stack, own_routes, route_prefixes
from hello.stack.insecure import InsecureGate
from hello.tls import create_ssl_context
from hello.wire.http2_engines import http2_engine

log = logging.getLogger("hello")


def run(settings: Settings, reread: Callable[[], Settings] | None = None) -> None:
    """Serve until told to stop. Raises ConfigError or StartupError before anything listens.

    With several workers, SIGHUP calls ``reread`` for fresh settings and replaces the workers
    with ones built from them; a single process reloads its certificate instead. With
    ``--reload`` this process only watches files: the app is built in the child that serves."""
    settings = _checked(settings)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a reload, once serving; never an exit
    metrics = _metrics(settings)
    board = Board()  # the serving processes' readiness, for the operations listener
    if settings.reload:
        sockets = bind_sockets(settings)
        _start_operations(settings, metrics, board, sockets)
        build = lambda: _built(settings, Lifecycle(board), sockets, metrics)  # noqa: E731
        directories = watched(settings.reload_dir, settings.pythonpath)
        Reloader(build, directories, board, settings.graceful_timeout).run()
        return
    lifecycle = Lifecycle(board)
    app = _app(settings, lifecycle, metrics)
    sockets = bind_sockets(settings)
    _start_operations(settings, metrics, board, sockets)
    worker = Worker(settings, _gated(settings, app, sockets), lifecycle, sockets, metrics)
    if settings.workers == 1 and not recycles(settings):
        lifecycle.slot = board.claim()
        serve(worker)
    else:  # a supervising parent keeps the sockets while workers come and go
        Supervisor(worker, (lambda: _rebuilt(worker, reread())) if reread else None).run()


def recycles(settings: Settings) -> bool:
    """Whether workers are replaced as they age: then even one worker has a supervisor."""
    return bool(settings.max_requests or settings.max_worker_memory)


def _checked(settings: Settings) -> Settings:
    """``settings`` ready to serve: what they need is here, ACME state or the local CA
    prepared, certificates loaded once, logging configured."""
    require(settings)
    if settings.acme or settings.self_signed:
        _configure_logging(settings)  # what the preparation finds is worth a line
    if settings.acme:
        from hello.tls import acme

        settings = acme.prepare(settings)
    if settings.self_signed:
        from hello.tls import local

        settings = local.prepare(settings)
    if settings.acme or settings.self_signed:
        create_ssl_context(settings)  # the pair just prepared (require() loaded a given one)
    _configure_logging(settings)
    return settings


def require(settings: Settings) -> None:
    """ConfigError, naming the flag, for what ``settings`` need and this installation lacks
    (an extra, the HTTP/2 engine), or for a certificate pair that does not load. Checked by a
    start and by --check alike; nothing is written."""
    needs = [
        ("acme_domain", ("acme", "josepy", "cryptography"), "ACME needs the acme extra", "acme"),
        ("self_signed", ("cryptography",), "the local CA needs cryptography", "acme"),
        ("quic_bind", ("aioquic",), "HTTP/3 needs aioquic", "h3"),
        ("reload", ("watchfiles",), "it needs watchfiles", "reload"),
    ]
    for name, modules, what, extra in needs:
        if getattr(settings, name) and not all(_imports(module) for module in modules):
            raise ConfigError(
                f"{settings.describe(name)}: {what}, which this installation lacks; install "
                f"hello with the {extra} extra (pip install '.[{extra}]' in its checkout)"
            )
    if settings.loop == "uvloop" and uvloop_module() is None:
        raise ConfigError(
            f"{settings.describe('loop')}: uvloop is not installed here; install hello with "
            "the uvloop extra (pip install '.[uvloop]' in its checkout) or use --loop asyncio"
        )
    http2_engine(settings.http2_engine)  # ngh2, when asked for, must import
    if settings.acme or settings.self_signed:
        _require_writable(settings)
    if settings.tls:
        create_ssl_context(settings)


def _require_writable(settings: Settings) -> None:
    """The state directory, or the directory it would be made in, can be written."""
    existing = settings.state_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        why = "not a directory" if not existing.is_dir() else "not writable"
        raise ConfigError(f"{settings.describe('state_dir')}: {existing} is {why}")


def _imports(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _app(settings: Settings, lifecycle: Lifecycle, metrics: Metrics | None) -> Stack:
    """The app a worker serves, before the plain-HTTP gate (which needs the bound sockets)."""
    return build_stack(settings, lifecycle, metrics)


def _gated(settings: Settings, stack: Stack, sockets: Sockets) -> Stack:
    if not settings.insecure_bind:
        return stack
    return stack.behind(lambda app: _insecure_gate(settings, app, sockets))


def _built(
    settings: Settings, lifecycle: Lifecycle, sockets: Sockets, metrics: Metrics | None
) -> Worker:
    app = _gated(settings, _app(settings, lifecycle, metrics), sockets)
    return Worker(settings, app, lifecycle, sockets, metrics)


RESTART_ONLY = ("bind", "insecure_bind", "quic_bind", "metrics_bind")


def _rebuilt(current: Worker, fresh: Settings) -> Worker:
    """A Worker from re-read settings, on the listeners ``current`` already has."""
    fresh = _checked(fresh)
    for name in RESTART_ONLY:
        if getattr(fresh, name) != getattr(current.settings, name):
            log.warning("%s changed; listeners change only on a restart", fresh.describe(name))
    return _built(fresh, Lifecycle(current.lifecycle.board), current.sockets, current.metrics)


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


def _insecure_gate(settings: Settings, app: ASGIApp, sockets: Sockets) -> ASGIApp:
    """Plain-HTTP listeners answer ACME challenges and redirect the rest to https."""
    port = settings.https_port
    if port is None:
        port = next(
            (sock.getsockname()[1] for sock in sockets.secure_sockets if sock.family != AF_UNIX),
            443,
        )
    return InsecureGate(app, settings.state_dir / "challenges", port)


def _metrics(settings: Settings) -> Metrics | None:
    if settings.metrics_bind is None:
        return None
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Every worker writes its figures here; chosen before prometheus_client is imported.
        directory = tempfile.mkdtemp(prefix="hello-metrics-")
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    return Metrics(route_prefixes(settings), own_routes(settings))


def _start_operations(
    settings: Settings, metrics: Metrics | None, board: Board, sockets: Sockets
) -> None:
    if settings.metrics_bind is None or metrics is None:
        return
    host, _, port = settings.metrics_bind.rpartition(":")
    try:
        start_listener(metrics, board, host.strip("[]"), int(port))
    except OSError as error:
        for sock in [*sockets.secure_sockets, *sockets.insecure_sockets, *sockets.quic_sockets]:
            sock.close()
        raise StartupError(
            f"cannot listen on {settings.describe('metrics_bind')}: {error.strerror or error}"
        ) from None
