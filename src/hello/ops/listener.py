"""The operations listener (``--metrics-bind``): /metrics, /healthz and /readyz, apart from the
public listeners, so probes and scrapes never meet an app's routes or its load.

Served from a thread of the process that holds the listening sockets: the single serving
process, or the parent of several workers (or of --reload's serving process), which then
answers for its children (``Board``). /readyz is 200 while at least one serving process is
ready; /healthz is 200 while this process runs. Every other path gets the metrics, as
prometheus_client serves them.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from hello.ops.lifecycle import Board
from hello.ops.metrics import Metrics, multiprocess

log = logging.getLogger("hello")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # a probe a second would flood the log


def start_listener(metrics: Metrics, board: Board, host: str, port: int) -> None:
    """Serve the operations endpoints on host:port from a daemon thread; OSError if it can't."""
    from prometheus_client import CollectorRegistry, make_wsgi_app
    from prometheus_client.exposition import ThreadingWSGIServer

    registry = metrics.registry
    if multiprocess():
        from prometheus_client import multiprocess as mp

        registry = CollectorRegistry()
        mp.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    scrape = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            return _plain(start_response, "200 OK", "ok")
        if path == "/readyz":
            if board.any_ready():
                return _plain(start_response, "200 OK", "ready")
            return _plain(start_response, "503 Service Unavailable", "not ready")
        result: Iterable[bytes] = scrape(environ, start_response)
        return result

    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    server_class = type("OpsServer", (ThreadingWSGIServer,), {"address_family": family})
    server: Any = make_server(host, port, app, server_class, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="hello-ops", daemon=True).start()
    shown = f"[{host}]" if ":" in host else host
    log.info("Operations on http://%s:%d: /metrics, /healthz, /readyz", shown, server.server_port)


def _plain(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    body = (text + "\n").encode()
    start_response(
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ],
    )
    return [body]
