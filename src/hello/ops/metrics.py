"""Prometheus metrics, served on their own listener (``--metrics-bind``), never the public one.

With several workers every process writes its figures to files in a shared directory
(prometheus-client's multiprocess mode, chosen by PROMETHEUS_MULTIPROC_DIR before the library
is first imported: ``server.run`` sets it), and the listener, in the first process, adds them
up. Route groups keep the label sets small: ``/`` , each mount prefix, each Quart route, and
``other``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

log = logging.getLogger("hello")

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Finished(Protocol):
    """What the metrics read of a finished request (stack/observe.py's Exchange)."""

    @property
    def path(self) -> str: ...

    @property
    def status(self) -> int: ...

    @property
    def protocol(self) -> str: ...

    @property
    def duration(self) -> float: ...

    @property
    def bytes_sent(self) -> int: ...


class Metrics:
    def __init__(self, prefixes: Sequence[str], routes: Sequence[str]) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.prefixes = sorted(prefixes, key=len, reverse=True)
        self.routes = set(routes)
        # In multiprocess mode the values live in files; the registry here is only for
        # serving a single process's figures.
        self.registry = CollectorRegistry()
        registry = None if multiprocess() else self.registry
        self.requests = Counter(
            "hello_requests",
            "HTTP requests answered",
            ["route", "status", "protocol"],
            registry=registry,
        )
        self.duration = Histogram(
            "hello_request_duration_seconds",
            "Time from request to the end of the response",
            ["route"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.bytes = Counter(
            "hello_response_body_bytes", "Response body bytes sent", ["route"], registry=registry
        )
        self.in_flight = Gauge(
            "hello_requests_in_flight",
            "Requests being answered",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.wsgi_busy = Gauge(
            "hello_wsgi_requests_busy",
            "Requests a WSGI app's thread pool is working on",
            ["mount"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.wsgi_threads = Gauge(
            "hello_wsgi_threads",
            "Threads of a WSGI app's pool",
            ["mount"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.certificate_expiry = Gauge(
            "hello_certificate_expiry_seconds",
            "Seconds until the served certificate expires",
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self.worker_restarts = Counter(
            "hello_worker_restarts",
            "Workers that exited unexpectedly and were replaced",
            registry=registry,
        )
        self.worker_recycles = Counter(
            "hello_worker_recycles",
            "Workers replaced past --max-requests or --max-worker-memory",
            registry=registry,
        )

    def route(self, path: str) -> str:
        if path == "/":
            return "/"
        for prefix in self.prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                return prefix
        return path if path in self.routes else "other"

    def started(self) -> None:
        self.in_flight.inc()

    def finished(self, exchange: Finished) -> None:
        self.in_flight.dec()
        route = self.route(exchange.path)
        self.requests.labels(route, str(exchange.status), exchange.protocol).inc()
        self.duration.labels(route).observe(exchange.duration)
        self.bytes.labels(route).inc(exchange.bytes_sent)

    def certificate_expires(self, not_after: datetime) -> None:
        """Set the expiry gauge from the served certificate's notAfter."""
        self.certificate_expiry.set(not_after.timestamp() - time.time())


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def process_gone(pid: int) -> None:
    if multiprocess():
        from prometheus_client import multiprocess as mp

        mp.mark_process_dead(pid)  # type: ignore[no-untyped-call]
