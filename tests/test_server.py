"""A real hello process: TLS with HTTP/2 negotiated, h2c, uploads, graceful stop, workers."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from importlib.resources import files
from pathlib import Path
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.events
import httpx
import pytest

from tests.conftest import Certs, clean_environ
from tests.support import HelloProcess

INDEX = (files("hello") / "static" / "index.html").read_bytes()


def h2_client(certs: Certs) -> httpx.Client:
    return httpx.Client(http2=True, verify=certs.client_context(), timeout=10)


def test_tls_negotiates_http2_and_serves_every_part(tls_server: HelloProcess, certs: Certs) -> None:
    url = tls_server.url
    assert url.startswith("https://127.0.0.1:")
    with h2_client(certs) as client:
        index = client.get(url + "/")
        assert index.http_version == "HTTP/2"
        assert index.content == INDEX
        greeting = client.get(url + "/hello", params={"name": "<script>Ada"})
        assert greeting.http_version == "HTTP/2"
        assert "Hello, &lt;script&gt;Ada!" in greeting.text
        legacy = client.get(url + "/legacy/")
        assert legacy.http_version == "HTTP/2"
        assert "Hello world, I am Flask!" in legacy.text
        assert client.get(url + "/healthz").status_code == 200
        assert client.get(url + "/readyz").status_code == 200
        assert client.get(url + "/no/such/page").status_code == 404
        assert client.get(url + "/legacyx").status_code == 404


@pytest.mark.parametrize("loop", ["auto", "asyncio", "uvloop"])
def test_each_event_loop_serves_http2_and_http11(certs: Certs, loop: str) -> None:
    flags = ["--bind", "127.0.0.1:0", *certs.flags(), "--loop", loop, "--log-level", "debug"]
    server = HelloProcess(flags, env=clean_environ())
    try:
        server.wait_for_output("event loop: " + ("asyncio" if loop == "asyncio" else "uvloop"))
        for http2 in (True, False):
            with httpx.Client(http2=http2, verify=certs.client_context(), timeout=10) as client:
                page = client.get(server.url + "/hello")
                legacy = client.get(server.url + "/legacy/")
            assert page.http_version == legacy.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
            assert "Hello, world!" in page.text
            assert "Hello world, I am Flask!" in legacy.text
        assert server.stop() == 0
    finally:
        server.kill()


def test_tls_serves_http11_to_clients_without_h2(tls_server: HelloProcess, certs: Certs) -> None:
    with httpx.Client(verify=certs.client_context()) as client:
        response = client.get(tls_server.url + "/legacy/")
    assert response.http_version == "HTTP/1.1"
    assert "Hello world, I am Flask!" in response.text


def _handshake(url: str, context: ssl.SSLContext) -> ssl.SSLSocket:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    raw = socket.create_connection((parts.hostname, parts.port), timeout=10)
    return context.wrap_socket(raw, server_hostname="localhost")


def test_alpn_offers_h2_and_http11_over_tls12_plus(tls_server: HelloProcess, certs: Certs) -> None:
    for offered, chosen in ((["h2", "http/1.1"], "h2"), (["http/1.1"], "http/1.1")):
        context = certs.client_context()
        context.set_alpn_protocols(offered)
        with _handshake(tls_server.url, context) as tls:
            assert tls.selected_alpn_protocol() == chosen
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    old = certs.client_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # deliberately old, to be refused
        old.minimum_version = ssl.TLSVersion.TLSv1_1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("ALL:@SECLEVEL=0")
    with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION|UNEXPECTED_EOF"):
        _handshake(tls_server.url, old).close()


def test_plain_bind_speaks_h2c_with_prior_knowledge(plain_server: HelloProcess) -> None:
    with httpx.Client(http1=False, http2=True) as client:
        response = client.get(plain_server.url + "/legacy/")
    assert response.http_version == "HTTP/2"
    assert "Hello world, I am Flask!" in response.text


def test_plain_bind_speaks_h2c_by_upgrade(plain_server: HelloProcess) -> None:
    parts = urlsplit(plain_server.url)
    assert parts.hostname is not None and parts.port is not None
    h2conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    upgrade = h2conn.initiate_upgrade_connection()
    assert upgrade is not None
    settings = base64.urlsafe_b64encode(upgrade).rstrip(b"=")
    request = (
        b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: " + settings + b"\r\n\r\n"
    )
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"upgrade: h2c" in head.lower()


def test_uploads_arrive_whole_over_http11_chunked_and_http2(
    tls_server: HelloProcess, certs: Certs
) -> None:
    body = os.urandom(3 * 1024 * 1024)
    expected = {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}

    def chunks() -> Iterator[bytes]:  # no length known: chunked on HTTP/1.1, bare DATA on h2
        for start in range(0, len(body), 100_000):
            yield body[start : start + 100_000]

    for http2 in (False, True):
        with httpx.Client(http2=http2, verify=certs.client_context(), timeout=30) as client:
            response = client.post(tls_server.url + "/legacy/upload", content=chunks())
        assert response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
        assert response.json() == expected


def test_body_over_the_limit_is_413_over_the_wire(certs: Certs) -> None:
    server = HelloProcess(
        [
            "--bind",
            "127.0.0.1:0",
            *certs.flags(),
            "--max-body-size",
            "1MiB",
        ],
        env=clean_environ(),
    )
    try:
        for http2 in (False, True):
            with httpx.Client(http2=http2, verify=certs.client_context(), timeout=30) as client:
                response = client.post(server.url + "/legacy/upload", content=b"x" * 2**21)
                assert response.status_code == 413
                after = client.get(server.url + "/legacy/")
                assert after.status_code == 200
    finally:
        assert server.stop() == 0


class Upload:
    """A POST to /legacy/upload over its own TLS connection, sent in two parts.

    ``begin`` returns once the server has provably taken the request in: over HTTP/1.1 it has
    answered ``Expect: 100-continue`` (Hypercorn does so when the app first reads the body);
    over HTTP/2 it has acknowledged a PING sent after the request's first frames (frames are
    handled in order).
    """

    def __init__(self, url: str, certs: Certs, protocol: str) -> None:
        self.protocol = protocol
        context = certs.client_context()
        context.set_alpn_protocols([protocol])
        self.sock = _handshake(url, context)
        assert self.sock.selected_alpn_protocol() == protocol
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))

    def begin(self, first: bytes, total: int) -> None:
        if self.protocol == "http/1.1":
            self.sock.sendall(
                b"POST /legacy/upload HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
                b"Content-Length: " + str(total).encode() + b"\r\n\r\n"
            )
            assert self._read_until(b"\r\n\r\n").startswith(b"HTTP/1.1 100")
            self.sock.sendall(first)
            return
        self.h2.initiate_connection()
        headers = [
            (":method", "POST"),
            (":scheme", "https"),
            (":authority", "localhost"),
            (":path", "/legacy/upload"),
        ]
        self.h2.send_headers(1, headers)
        self.h2.send_data(1, first)
        self.h2.ping(b"inflight")
        self.sock.sendall(self.h2.data_to_send())
        self._h2_events(lambda event: isinstance(event, h2.events.PingAckReceived))

    def finish(self, rest: bytes) -> tuple[int, bytes]:
        """Send the rest of the body; the response's status and body."""
        if self.protocol == "http/1.1":
            self.sock.sendall(rest)
            head = self._read_until(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            body = self._buffer[:length]
            while len(body) < length:
                body += self.sock.recv(65536)
            return int(head.split(b" ")[1]), body
        self.h2.send_data(1, rest, end_stream=True)
        self.sock.sendall(self.h2.data_to_send())
        status, body = 0, b""
        for event in self._h2_events(lambda event: isinstance(event, h2.events.StreamEnded)):
            if isinstance(event, h2.events.ResponseReceived):
                status = int(dict(event.headers)[b":status"])
            elif isinstance(event, h2.events.DataReceived):
                body += event.data
        return status, body

    _buffer = b""

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self._buffer:
            data = self.sock.recv(65536)
            assert data, "connection closed early"
            self._buffer += data
        head, _, self._buffer = self._buffer.partition(marker)
        return head

    def _h2_events(self, last: Callable[[h2.events.Event], bool]) -> list[h2.events.Event]:
        seen: list[h2.events.Event] = []
        while not any(last(event) for event in seen):
            data = self.sock.recv(65536)
            assert data, "connection closed early"
            seen.extend(self.h2.receive_data(data))
            self.sock.sendall(self.h2.data_to_send())
        return seen


@pytest.mark.parametrize("protocol", ["http/1.1", "h2"])
def test_sigterm_lets_the_request_in_flight_finish(
    tls_server: HelloProcess, certs: Certs, protocol: str
) -> None:
    first, rest = b"first part;" * 100, b"second part;" * 100
    upload = Upload(tls_server.url, certs, protocol)
    upload.begin(first, len(first + rest))
    tls_server.signal(signal.SIGTERM)
    tls_server.wait_for_output("SIGTERM: shutting down")
    _wait_for_listener_to_close(tls_server.url, certs)
    status, answer = upload.finish(rest)
    upload.sock.close()
    body = first + rest
    assert status == 200
    assert json.loads(answer) == {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    assert tls_server.wait(10) == 0


def _wait_for_listener_to_close(url: str, certs: Certs) -> None:
    """Once shutdown has begun, the listener closes within a few turns of the server's loop;
    each attempt here is a full connection, which paces the polling by itself."""
    deadline = time.monotonic() + 10
    while True:
        try:
            with h2_client(certs) as probe:
                probe.get(url + "/healthz")
        except httpx.ConnectError:
            return
        except httpx.RemoteProtocolError:
            pass  # accepted just before the listener closed, then refused
        assert time.monotonic() < deadline, "still accepting connections after SIGTERM"


def test_shutdown_delay_reports_not_ready_while_still_serving(certs: Certs) -> None:
    server = HelloProcess(
        [
            "--bind",
            "127.0.0.1:0",
            "--shutdown-delay",
            "2",
            *certs.flags(),
        ],
        env=clean_environ(),
    )
    try:
        with h2_client(certs) as client:
            assert client.get(server.url + "/readyz").status_code == 200
            server.signal(signal.SIGTERM)
            server.wait_for_output("SIGTERM: shutting down")  # logged once /readyz is 503
            ready = client.get(server.url + "/readyz")
            assert ready.status_code == 503 and ready.text == "shutting down\n"
            assert client.get(server.url + "/legacy/").status_code == 200  # still serving
        assert server.wait(10) == 0
    finally:
        server.kill()


def test_sigint_stops_cleanly_and_quickly(plain_server: HelloProcess) -> None:
    assert httpx.get(plain_server.url + "/readyz").status_code == 200  # listening means ready
    started = time.monotonic()
    plain_server.signal(signal.SIGINT)
    assert plain_server.wait(10) == 0
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_stop_signals_during_the_exit_do_not_kill_it(loop: str) -> None:
    """A second SIGTERM (a supervisor, an impatient script) while the process finishes its
    stop leaves the exit clean: 0, not killed by the signal (-15). Once the event loop had
    closed, its handlers were gone and the default action killed the process."""
    server = HelloProcess(["--bind", "127.0.0.1:0", "--loop", loop], env=clean_environ())
    try:
        while True:  # a SIGTERM every 2 ms until the process has exited
            server.signal(signal.SIGTERM)
            try:
                code = server.process.wait(timeout=0.002)
            except subprocess.TimeoutExpired:
                continue
            break
        assert code == 0, server.stderr
    finally:
        server.kill()


def test_workers_share_the_listener_and_stop_together(certs: Certs) -> None:
    server = HelloProcess(
        [
            "--bind",
            "127.0.0.1:0",
            "--workers",
            "2",
            *certs.flags(),
        ],
        env=clean_environ(),
    )
    try:
        with h2_client(certs) as client:
            for _ in range(3):
                response = client.get(server.url + "/legacy/")
                assert response.http_version == "HTTP/2"
                assert response.status_code == 200
        announced = server.wait_for_output("Running on", count=2)
        pids = {line.split("]")[1] for line in announced}
        assert len(pids) == 2  # two worker processes announced themselves
        assert server.stop() == 0
    finally:
        server.kill()


def test_each_worker_tunes_its_garbage_collector() -> None:
    """The garbage collector skips what start-up made and collects young objects less often,
    in each serving process; the supervisor, which may yet replace its app, freezes nothing."""
    flags = ["--bind", "127.0.0.1:0", "--workers", "2", "--log-level", "debug"]
    server = HelloProcess(flags, env=clean_environ())
    try:
        lines = server.wait_for_output("start-up objects frozen", count=2)
        pids = {int(line.split("]")[1].strip(" [")) for line in lines}
        assert len(pids) == 2 and server.process.pid not in pids
        frozen = [int(line.split("collector: ")[1].split()[0]) for line in lines]
        assert min(frozen) > 10_000  # modules, Quart, Flask, the templates: thousands of objects
        assert all(line.rstrip().endswith("collected every 10000") for line in lines)
        with httpx.Client() as client:
            assert client.get(server.url + "/hello").status_code == 200
        assert server.stop() == 0
    finally:
        server.kill()


def test_a_dead_worker_is_replaced(certs: Certs) -> None:
    server = HelloProcess(["--bind", "127.0.0.1:0", "--workers", "2"], env=clean_environ())
    try:
        pids = [line.split("]")[1].strip(" [") for line in server.stderr_lines if "Running" in line]
        os.kill(int(pids[0]), signal.SIGKILL)
        server.wait_for_output("Running on", count=3)  # the replacement is listening
        assert "starting another" in server.stderr
        with httpx.Client() as client:
            assert client.get(server.url + "/healthz").status_code == 200
        assert server.stop() == 0
    finally:
        server.kill()


def test_unix_socket_bind(tmp_path: Path) -> None:
    path = tmp_path / "hello.sock"
    server = HelloProcess(["--bind", f"unix:{path}"], env=clean_environ())
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(path))) as client:
            response = client.get("http://localhost/legacy/")
        assert "Hello world, I am Flask!" in response.text
    finally:
        assert server.stop() == 0


def test_settings_from_environment_and_file(tmp_path: Path, certs: Certs) -> None:
    config = tmp_path / "hello.toml"
    config.write_text(f'certfile = "{certs.certfile}"\nkeyfile = "{certs.keyfile}"\n')
    env = clean_environ() | {"HELLO_CONFIG": str(config), "HELLO_BIND": "127.0.0.1:0"}
    server = HelloProcess([], env=env)
    try:
        with h2_client(certs) as client:
            assert client.get(server.url + "/").http_version == "HTTP/2"
    finally:
        assert server.stop() == 0


def test_access_log_to_stdout() -> None:
    server = HelloProcess(["--bind", "127.0.0.1:0", "--access-log", "-"], env=clean_environ())
    try:
        with httpx.Client() as client:
            client.get(server.url + "/hello?name=log")
        server.wait_for_output('"GET /hello?name=log HTTP/1.1" 200', stream="stdout")
    finally:
        assert server.stop() == 0


def test_console_script_and_hypercorn_serve_the_same_app() -> None:
    bindir = Path(sys.executable).parent
    hello_script = shutil.which("hello", path=str(bindir))
    hypercorn_script = shutil.which("hypercorn", path=str(bindir))
    assert hello_script and hypercorn_script
    servers = [
        HelloProcess(["--bind", "127.0.0.1:0"], command=[hello_script], env=clean_environ()),
        HelloProcess(
            ["--bind", "127.0.0.1:0", "hello.asgi:app"],
            command=[hypercorn_script],
            env=clean_environ(),
        ),
    ]
    try:
        for server in servers:
            with httpx.Client() as client:
                assert client.get(server.url + "/").content == INDEX
                assert "Hello world, I am Flask!" in client.get(server.url + "/legacy/").text
    finally:
        for server in servers:
            assert server.stop() == 0


def test_hsts_on_tls_only(
    tls_server: HelloProcess, plain_server: HelloProcess, certs: Certs
) -> None:
    with h2_client(certs) as client:
        secure = client.get(tls_server.url + "/")
    assert secure.headers["strict-transport-security"] == "max-age=31536000"
    with httpx.Client() as client:
        plain = client.get(plain_server.url + "/")
    assert "strict-transport-security" not in plain.headers


def test_hsts_can_be_switched_off(certs: Certs) -> None:
    server = HelloProcess(
        ["--bind", "127.0.0.1:0", *certs.flags(), "--hsts-max-age", "0"], env=clean_environ()
    )
    try:
        with h2_client(certs) as client:
            response = client.get(server.url + "/")
        assert response.status_code == 200
        assert "strict-transport-security" not in response.headers
    finally:
        assert server.stop() == 0
