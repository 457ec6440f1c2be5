"""HTTP/3, metrics and access logs, from real processes (and a few pure parts in-process)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import QuicEvent
from prometheus_client.parser import text_string_to_metric_families

from hello.ops.metrics import Metrics
from hello.stack.observe import Exchange
from tests.conftest import Certs, clean_environ
from tests.support import HelloProcess, run_hello

MOUNTED = Path(__file__).parent / "mounted"
INDEX = (files("hello") / "static" / "index.html").read_bytes()


class H3Client(QuicConnectionProtocol):
    """Just enough of an HTTP/3 client: GET a path, collect the status and body."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.pending: dict[int, tuple[asyncio.Future[list[H3Event]], list[H3Event]]] = {}

    def quic_event_received(self, event: QuicEvent) -> None:
        for h3_event in self.h3.handle_event(event):
            if isinstance(h3_event, HeadersReceived | DataReceived):
                future, seen = self.pending[h3_event.stream_id]
                seen.append(h3_event)
                if h3_event.stream_ended:
                    future.set_result(seen)

    async def get(self, path: str) -> tuple[int, bytes]:
        stream_id = self._quic.get_next_available_stream_id()
        headers = [
            (b":method", b"GET"),
            (b":scheme", b"https"),
            (b":authority", b"localhost"),
            (b":path", path.encode()),
        ]
        self.h3.send_headers(stream_id, headers, end_stream=True)
        future: asyncio.Future[list[H3Event]] = asyncio.get_running_loop().create_future()
        self.pending[stream_id] = (future, [])
        self.transmit()
        events = await asyncio.wait_for(future, 10)
        status = next(
            int(dict(e.headers)[b":status"]) for e in events if isinstance(e, HeadersReceived)
        )
        body = b"".join(e.data for e in events if isinstance(e, DataReceived))
        return status, body


async def h3_get(port: int, certs: Certs, *paths: str) -> list[tuple[int, bytes]]:
    configuration = QuicConfiguration(
        is_client=True, alpn_protocols=H3_ALPN, server_name="localhost"
    )
    configuration.load_verify_locations(str(certs.ca_file))
    async with connect(
        "127.0.0.1", port, configuration=configuration, create_protocol=H3Client
    ) as client:
        assert isinstance(client, H3Client)
        return [await client.get(path) for path in paths]


@pytest.fixture
def server(certs: Certs) -> Iterator[HelloProcess]:
    tls = certs.flags()
    process = HelloProcess(
        ["--bind", "127.0.0.1:0", *tls, "--access-log", "-", "--log-format", "json"],
        env=clean_environ(),
    )
    try:
        yield process
    finally:
        process.kill()


def test_http3_on_the_tls_port(certs: Certs) -> None:
    with HelloProcessOnUdp(certs) as (server, port):
        with httpx.Client(http2=True, verify=certs.client_context()) as client:
            response = client.get(server.url + "/")
        assert response.headers["alt-svc"] == f'h3=":{port}"; ma=86400'
        results = asyncio.run(h3_get(port, certs, "/", "/legacy/", "/readyz"))
        assert results[0] == (200, INDEX)
        assert results[1][0] == 200 and b"Hello world, I am Flask!" in results[1][1]
        assert results[2][0] == 200


def test_alt_svc_names_the_https_port_behind_a_port_mapping(certs: Certs) -> None:
    with HelloProcessOnUdp(certs, "--https-port", "443") as (server, port):
        with httpx.Client(http2=True, verify=certs.client_context()) as client:
            response = client.get(server.url + "/")
        assert port != 443 and response.headers["alt-svc"] == 'h3=":443"; ma=86400'


def test_quic_stops_at_once_when_idle(certs: Certs) -> None:
    """Hypercorn's UDP server looked at the shutdown only when a datagram arrived: an idle
    --quic-bind server waited the whole graceful timeout."""
    with HelloProcessOnUdp(certs, "--graceful-timeout", "30") as (server, port):
        assert asyncio.run(h3_get(port, certs, "/readyz"))[0][0] == 200
        started = time.monotonic()
        assert server.stop() == 0
        assert time.monotonic() - started < 5  # not the 30 s of --graceful-timeout


def test_quic_lets_a_request_in_flight_finish(certs: Certs) -> None:
    mount = ["--pythonpath", str(MOUNTED), "--mount", "/slow=asgi:slow:app"]
    with HelloProcessOnUdp(certs, *mount) as (server, port):

        async def get_while_stopping() -> list[tuple[int, bytes]]:
            answer = asyncio.ensure_future(h3_get(port, certs, "/slow/?1.5"))
            await asyncio.to_thread(server.wait_for_output, "slow: started", stream="stdout")
            server.signal(signal.SIGTERM)
            return await answer

        assert asyncio.run(get_while_stopping()) == [(200, b"done")]


class HelloProcessOnUdp:
    """hello with --quic-bind on the same port number as its TLS listener."""

    def __init__(self, certs: Certs, *flags: str) -> None:
        self.certs = certs
        self.flags = flags

    def __enter__(self) -> tuple[HelloProcess, int]:
        tls = ["--certfile", str(self.certs.certfile), "--keyfile", str(self.certs.keyfile)]
        tls += self.flags
        probe = HelloProcess(["--bind", "127.0.0.1:0", *tls], env=clean_environ())
        port = urlsplit(probe.url).port
        probe.stop()  # the port is free again; reuse its number for TCP and UDP
        self.server = HelloProcess(
            ["--bind", f"127.0.0.1:{port}", "--quic-bind", f"127.0.0.1:{port}", *tls],
            env=clean_environ(),
        )
        assert port is not None
        return self.server, port

    def __exit__(self, *exc: object) -> None:
        assert self.server.stop() == 0


def test_json_access_log_with_request_ids(server: HelloProcess, certs: Certs) -> None:
    with httpx.Client(http2=True, verify=certs.client_context()) as client:
        given = client.get(server.url + "/hello?name=Ada", headers={"X-Request-ID": "req-42"})
        made = client.get(server.url + "/static/style.css", headers={"X-Request-ID": "<bad>"})
    assert given.headers["x-request-id"] == "req-42"
    generated = made.headers["x-request-id"]
    assert len(generated) == 32 and generated != "<bad>"
    lines = server.wait_for_output('"request_id"', count=2, stream="stdout")
    first, second = (json.loads(line) for line in lines[:2])
    assert set(first) == {
        "time",
        "client",
        "method",
        "path",
        "status",
        "bytes",
        "duration",
        "protocol",
        "user_agent",
        "request_id",
    }
    assert first["path"] == "/hello?name=Ada" and first["status"] == 200
    assert first["protocol"] == "HTTP/2" and first["request_id"] == "req-42"
    assert first["bytes"] == len(given.content) and first["client"] == "127.0.0.1"
    assert second["request_id"] == generated and second["path"] == "/static/style.css"


def scrape(url: str) -> dict[str, Any]:
    text = httpx.get(url).text
    return {family.name: family for family in text_string_to_metric_families(text)}


@pytest.mark.parametrize("workers", ["1", "2"])
def test_metrics_on_their_own_listener(certs: Certs, workers: str) -> None:
    tls = certs.flags()
    server = HelloProcess(
        [
            "--bind",
            "127.0.0.1:0",
            *tls,
            "--workers",
            workers,
            "--metrics-bind",
            "127.0.0.1:0",
        ],
        env=clean_environ(),
    )
    (line,) = server.wait_for_output("Operations on http://")
    metrics_port = urlsplit(line.split("Operations on ")[1].split(": ")[0]).port
    try:
        with httpx.Client(http2=True, verify=certs.client_context()) as client:
            for _ in range(3):
                assert client.get(server.url + "/legacy/").status_code == 200
            assert client.get(server.url + "/metrics").status_code == 404  # never public
        families = scrape(f"http://127.0.0.1:{metrics_port}/metrics")
        for probe, answer in (("healthz", "ok\n"), ("readyz", "ready\n")):
            response = httpx.get(f"http://127.0.0.1:{metrics_port}/{probe}")
            assert (response.status_code, response.text) == (200, answer)
            assert response.headers["cache-control"] == "no-store"
        requests = {
            (s.labels["route"], s.labels["status"], s.labels["protocol"]): s.value
            for s in families["hello_requests"].samples
            if s.name == "hello_requests_total"
        }
        assert requests[("/legacy", "200", "HTTP/2")] == 3
        assert requests[("other", "404", "HTTP/2")] == 1
        assert families["hello_request_duration_seconds"].type == "histogram"
        expiry = families["hello_certificate_expiry_seconds"].samples[0].value
        assert expiry > 365 * 86400  # trustme certificates last for centuries
        busy = {s.labels["mount"]: s.value for s in families["hello_wsgi_threads"].samples}
        assert busy["/legacy"] >= 10
        assert "hello_worker_restarts" in families and "hello_requests_in_flight" in families
    finally:
        assert server.stop() == 0


def test_quic_needs_tls_and_one_worker(certs: Certs) -> None:
    plain = run_hello(["--quic-bind", "127.0.0.1:0"], env=clean_environ())
    assert plain.returncode == 2 and "HTTP/3 needs TLS" in plain.stderr
    tls = certs.flags()
    several = run_hello(["--quic-bind", "127.0.0.1:0", "--workers", "2", *tls], env=clean_environ())
    assert several.returncode == 2 and "one worker only" in several.stderr


def test_route_groups_stay_few() -> None:
    metrics = Metrics(["/legacy", "/static", "/dj"], ["/hello", "/time"])
    assert [
        metrics.route(p)
        for p in ("/", "/legacy/", "/static/a.css", "/dj", "/djx", "/hello", "/nope/1")
    ] == ["/", "/legacy", "/static", "/dj", "other", "/hello", "other"]


def test_text_log_line() -> None:
    exchange = Exchange(
        0.0, 0.25, "10.0.0.1", "GET", "/a", "b=1", 200, 5, "HTTP/1.1", "ua", "", "id1"
    )
    assert exchange.text_line() == (
        '10.0.0.1 - - [01/Jan/1970:00:00:00 +0000] "GET /a?b=1 HTTP/1.1" 200 5 "-" "ua" '
        "0.250000 id1"
    )
