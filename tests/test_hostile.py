"""Hostile clients against a real process: slowhttptest, h2load and wrk from Debian, and raw
sockets for what no tool sends on purpose."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import httpx
import pytest

from tests.conftest import Certs, clean_environ
from tests.h2client import H2Client, host_port, tls_socket
from tests.support import HelloProcess, poll

# libnghttp2 answers a reset flood with GOAWAY INTERNAL_ERROR (its stream_reset_rate_limit).
RAPID_RESET_CODE = h2.errors.ErrorCodes.INTERNAL_ERROR

pytestmark = pytest.mark.slow


@pytest.fixture
def strict_server(certs: Certs) -> Iterator[HelloProcess]:
    """TLS, with short limits so that the slow clients are caught within seconds."""
    flags = ["--bind", "127.0.0.1:0", *certs.flags(), "--header-timeout", "2"]
    server = HelloProcess([*flags, "--body-rate-grace", "2"], env=clean_environ())
    try:
        yield server
    finally:
        server.kill()


def established(port: int) -> int:
    """The server's own established TCP connections on ``port`` (from /proc/net)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                local, _, state = line.split()[1:4]
                count += int(local.rsplit(":", 1)[1], 16) == port and state == "01"
    return count


SLOW_CLIENTS = 100
SLOW_TEST_SECONDS = 40  # slowhttptest's own length: far past the time the server needs


def slow_clients_are_cut_off(server: HelloProcess, *mode: str) -> None:
    """Run slowhttptest against ``server`` and watch the server's own connections: they rise
    to most of the clients, then fall to at most a tenth of them while slowhttptest still
    runs (its clients never give up by themselves within SLOW_TEST_SECONDS), so it is the
    server that closed them."""
    port = host_port(server)[1]
    url = server.url + "/legacy/upload"
    attack = subprocess.Popen(
        ["slowhttptest", *mode, "-c", str(SLOW_CLIENTS), "-l", str(SLOW_TEST_SECONDS), "-u", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        poll(lambda: established(port) >= SLOW_CLIENTS // 2, "half the clients connect", 15)
        left = SLOW_CLIENTS // 10
        poll(lambda: established(port) <= left, f"at most {left} connections left", 20)
        assert attack.poll() is None, "slowhttptest ended before the server cut it off"
    finally:
        attack.kill()
        attack.wait()


def test_slow_request_bodies_are_disconnected(strict_server: HelloProcess, certs: Certs) -> None:
    # 100 clients sending a 8 KiB body a few bytes every 2 s.
    slow_clients_are_cut_off(strict_server, "-B", "-r", "50", "-i", "2", "-s", "8192", "-t", "POST")
    strict_server.wait_for_output("under the minimum of 240 (--min-body-rate)")
    with httpx.Client(verify=certs.client_context()) as client:
        assert client.get(strict_server.url + "/legacy/", timeout=1).status_code == 200


def test_slow_request_heads_are_disconnected(strict_server: HelloProcess) -> None:
    # Slowloris: 100 clients adding a header line every 1 s, never finishing.
    slow_clients_are_cut_off(strict_server, "-H", "-r", "50", "-i", "1")


def test_a_silent_connection_is_closed_without_a_handshake(strict_server: HelloProcess) -> None:
    with socket.create_connection(host_port(strict_server)) as raw:
        raw.settimeout(10)
        assert raw.recv(1) == b""  # closed by the server after --header-timeout


@pytest.mark.slow
def test_a_tls_client_that_never_answers_the_close_is_let_go_quietly(
    strict_server: HelloProcess, certs: Certs
) -> None:
    """Like slowloris over TLS: the server closes an idle client after --header-timeout and
    sends close_notify; the client answers nothing, and asyncio gives up waiting for it after
    its SSL shutdown timeout (30 s). That ends the connection, not with a logged traceback."""
    with tls_socket(strict_server, certs, "http/1.1") as client:
        port = host_port(strict_server)[1]
        poll(lambda: established(port) == 0, "the server ends the connection", 45)
        assert client.fileno() != -1  # still open on this side: nothing was answered
    strict_server.stop()
    assert "Traceback" not in strict_server.stderr, strict_server.stderr
    assert "SSL shutdown timed out" not in strict_server.stderr


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_malformed_request_gets_400_and_a_close(tls_server: HelloProcess, certs: Certs) -> None:
    with tls_socket(tls_server, certs, "http/1.1") as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nBad Header\r\n\r\n")
        answer = read_all(sock)  # ends: the server closed the connection
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"Traceback" not in answer and b"server: hello" in answer.lower()


def test_oversized_head_gets_431_over_http1(tls_server: HelloProcess, certs: Certs) -> None:
    with tls_socket(tls_server, certs, "http/1.1") as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"x" * 200_000 + b"\r\n\r\n")
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_oversized_head_gets_431_over_http2(h2_server: HelloProcess, certs: Certs) -> None:
    client = H2Client(h2_server, certs)
    client.request(1, "/", ("x-big", "x" * 200_000))
    for event in client.events():
        if isinstance(event, h2.events.ResponseReceived):
            assert dict(event.headers)[b":status"] == b"431"
            break
    client.sock.close()


def test_rapid_reset_flood_ends_the_connection(
    h2_server: HelloProcess, certs: Certs, http2_engine: str
) -> None:
    """Streams opened and cancelled at once (CVE-2023-44487): past a burst of 200, GOAWAY.
    On ngh2 it is libnghttp2's own limit (a token bucket); on h2, wire/h2_engine.py's."""
    client = H2Client(h2_server, certs)
    for stream_id in range(1, 2 * 400, 2):  # 400 streams, each cancelled at once
        client.request(stream_id, "/hello")
        client.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        client.flush()
    ended = [e for e in client.events() if isinstance(e, h2.events.ConnectionTerminated)]
    client.sock.close()
    assert ended
    code = h2.errors.ErrorCodes.ENHANCE_YOUR_CALM if http2_engine == "h2" else RAPID_RESET_CODE
    assert ended[0].error_code == code
    assert (ended[0].last_stream_id or 0) < 2 * 400 - 1  # cut off before the flood ends
    h2_server.wait_for_output("streams reset by the client)")
    with httpx.Client(http2=True, verify=certs.client_context()) as polite:
        assert polite.get(h2_server.url + "/").status_code == 200  # others are served


def test_h2load_flood_is_served_in_full(h2_server: HelloProcess) -> None:
    done = subprocess.run(
        ["h2load", "-n", "4000", "-c", "16", "-m", "32", h2_server.url + "/hello"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "4000 succeeded, 0 failed, 0 errored" in done.stdout, done.stdout
    assert "status codes: 4000 2xx" in done.stdout, done.stdout


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_clients_leaving_mid_response_leave_no_log_noise(
    certs: Certs, loop: str, http2_engine: str
) -> None:
    """h2load stops with 256 streams in flight on the WSGI app; what the server still had to
    write to those connections is dropped quietly (asyncio logs "socket.send() raised
    exception." for every write past the fifth to a lost connection)."""
    flags = ["--bind", "127.0.0.1:0", *certs.flags(), "--loop", loop]
    server = HelloProcess([*flags, "--http2-engine", http2_engine], env=clean_environ())
    try:
        for _ in range(2):
            subprocess.run(
                ["h2load", "-D", "2", "-c", "16", "-m", "16", server.url + "/legacy/"],
                capture_output=True,
                timeout=60,
            )
        assert httpx.get(server.url + "/healthz", verify=certs.client_context()).status_code == 200
        assert server.stop() == 0
        assert "raised exception" not in server.stderr, server.stderr[-2000:]
        assert "Traceback" not in server.stderr, server.stderr[-2000:]
    finally:
        server.kill()


def in_flight(metrics_url: str) -> float:
    text = httpx.get(metrics_url).text
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("hello_requests_in_flight")
    )


def test_http2_responses_a_vanished_client_was_owed_end(
    certs: Certs, tmp_path: Path, http2_engine: str
) -> None:
    """A client asks for ten 1 MiB files over HTTP/2, reads one packet and leaves: the ten
    responses, stuck on flow control, end with the connection instead of waiting forever
    (each would count as in flight, and hold shutdown for the whole graceful timeout)."""
    (tmp_path / "big.bin").write_bytes(bytes(1024 * 1024))
    flags = ["--bind", "127.0.0.1:0", *certs.flags(), "--static", f"/files={tmp_path}"]
    flags += ["--metrics-bind", "127.0.0.1:0", "--access-log", "-"]
    server = HelloProcess([*flags, "--http2-engine", http2_engine], env=clean_environ())
    try:
        (line,) = server.wait_for_output("Operations on http://")
        metrics_url = line.split("Operations on ")[1].split(": ")[0] + "/metrics"
        context = certs.client_context()
        context.set_alpn_protocols(["h2"])
        with (
            socket.create_connection(host_port(server)) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
        ):
            client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
            client.initiate_connection()
            for _ in range(10):
                stream = client.get_next_available_stream_id()
                headers = [(":method", "GET"), (":path", "/files/big.bin")]
                headers += [(":scheme", "https"), (":authority", "127.0.0.1")]
                client.send_headers(stream, headers, end_stream=True)
            sock.sendall(client.data_to_send())
            assert sock.recv(65536)  # the server has begun to answer
        # A request's access log line is written once it ended (after the metrics heard it).
        server.wait_for_output("/files/big.bin", count=10, stream="stdout")
        assert in_flight(metrics_url) == 0
        started = time.monotonic()
        assert server.stop() == 0
        assert time.monotonic() - started < 5  # not the 10 s graceful timeout
    finally:
        server.kill()


def test_server_header_is_hellos_and_configurable(certs: Certs) -> None:
    for flag, expected in ((None, "hello"), ("edge", "edge"), ("", None)):
        extra = [] if flag is None else ["--server-header", flag]
        server = HelloProcess(["--bind", "127.0.0.1:0", *extra], env=clean_environ())
        try:
            response = httpx.get(server.url + "/healthz")
            assert response.headers.get("server") == expected
        finally:
            assert server.stop() == 0


@contextlib.contextmanager
def wrk(url: str, seconds: int, *extra: str) -> Iterator[subprocess.Popen[str]]:
    """wrk on ``url`` for ``seconds``; stopped by its pid if the test ends before it does."""
    load = subprocess.Popen(
        ["wrk", "-t2", "-c32", f"-d{seconds}s", *extra, url], stdout=subprocess.PIPE, text=True
    )
    try:
        yield load
    finally:
        if load.poll() is None:
            load.kill()
        load.communicate()


def wrk_report(process: subprocess.Popen[str]) -> tuple[int, int, str]:
    """Requests and socket errors of a finished wrk run, and its report."""
    report, _ = process.communicate(timeout=30)
    total = re.search(r"(\d+) requests in", report)
    assert total, report
    assert "Non-2xx" not in report, report
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", report
    )
    return int(total[1]), sum(int(n) for n in errors.groups()) if errors else 0, report


def test_sighup_under_load_loses_nothing(tls_server: HelloProcess, certs: Certs) -> None:
    """One default process: SIGHUP reloads the certificate while wrk runs."""
    with wrk(tls_server.url + "/legacy/", 5) as load:
        httpx.get(tls_server.url + "/healthz", verify=certs.client_context())  # load under way
        tls_server.signal(signal.SIGHUP)
        tls_server.wait_for_output("certificate reloaded (SIGHUP)")
        tls_server.signal(signal.SIGHUP)
        tls_server.wait_for_output("certificate reloaded (SIGHUP)", count=2)
        requests, errors, report = wrk_report(load)
    assert requests > 0 and errors == 0, report


@pytest.mark.parametrize("workers", [2, 4])
@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_eight_generation_changes_under_load_lose_nothing(
    workers: int, tls: bool, certs: Certs
) -> None:
    """8 SIGHUPs 2.5 s apart, each a new generation of workers, while wrk -t2 -c32 runs:
    not one socket error, not one non-2xx."""
    args = ["--bind", "127.0.0.1:0", "--workers", str(workers), *(certs.flags() if tls else [])]
    server = HelloProcess(args, env=clean_environ())
    try:
        server.wait_for_output("Running on", count=workers)
        with wrk(server.url + "/legacy/", 22) as load:
            for change in range(1, 9):
                time.sleep(2.5)  # the spacing of the reloads, not a wait for a state
                server.signal(signal.SIGHUP)
                server.wait_for_output(f"SIGHUP: started {workers} workers", count=change)
            requests, errors, report = wrk_report(load)
        assert requests > 0 and errors == 0, report
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_connections_accepted_as_a_worker_stops_are_answered(loop: str) -> None:
    """A new connection for every request (wrk, Connection: close) through 25 generation
    changes, each begun once the last one's workers listen: the old workers accept until
    they stop, and each connection they accepted is answered. On asyncio's loop, those
    accepted in the turn before Hypercorn closed the listeners were dropped and their
    clients reset (CPython gh-109564): 34 to 64 read errors in each of 3 runs."""
    args = ["--bind", "127.0.0.1:0", "--workers", "2", "--loop", loop]
    server = HelloProcess(args, env=clean_environ())
    try:
        server.wait_for_output("Running on", count=2)
        with wrk(server.url + "/healthz", 120, "-H", "Connection: close") as load:
            for change in range(1, 26):
                server.signal(signal.SIGHUP)
                server.wait_for_output("Running on", count=2 * (change + 1))
            load.send_signal(signal.SIGINT)  # wrk stops and reports
            requests, errors, report = wrk_report(load)
        assert requests > 0 and errors == 0, report
    finally:
        assert server.stop() == 0


def test_http2_clients_are_told_of_a_generation_change_and_lose_nothing(
    certs: Certs, http2_engine: str
) -> None:
    """An HTTP/2 connection to a worker that stops gets GOAWAY at once: the client opens a new
    connection for its next request instead of finding its streams refused until the old
    worker's graceful timeout (httpx: "Max outbound streams is 0")."""
    args = ["--bind", "127.0.0.1:0", "--workers", "2", *certs.flags()]
    server = HelloProcess([*args, "--http2-engine", http2_engine], env=clean_environ())
    try:
        server.wait_for_output("Running on", count=2)
        answered, after = 0, 0
        failed: list[str] = []
        # Uploads before the reload and on after it, until the new generation has started
        # and 100 more went through, 900 at most: under the 1,000 requests a connection
        # gets, since this is about the reload, and that close is another matter.
        with httpx.Client(http2=True, verify=certs.client_context(), timeout=15) as client:
            for sent in range(900):
                if sent == 100:
                    server.signal(signal.SIGHUP)
                elif sent > 100 and "SIGHUP: started 2 workers" in server.stderr:
                    after += 1
                    if after > 100:
                        break
                body = os.urandom(64 * 1024)
                try:
                    answer = client.post(server.url + "/legacy/upload", content=body)
                    assert answer.http_version == "HTTP/2"
                    assert answer.json()["sha256"] == hashlib.sha256(body).hexdigest()
                    answered += 1
                except httpx.HTTPError as error:
                    failed.append(repr(error))
        server.wait_for_output("SIGHUP: started 2 workers")
        assert answered > 50 and not failed, failed[:3]
    finally:
        assert server.stop() == 0


def test_sighup_replaces_workers_under_load(tmp_path: Path) -> None:
    config = tmp_path / "hello.toml"
    config.write_text('server_header = "before"\nworkers = 2\n')
    server = HelloProcess(["--bind", "127.0.0.1:0", "--config", str(config)], env=clean_environ())
    try:
        server.wait_for_output("Running on", count=2)
        with wrk(server.url + "/legacy/", 5) as load:
            assert httpx.get(server.url + "/healthz").headers["server"] == "before"
            config.write_text('server_header = "after"\nworkers = 2\n')
            server.signal(signal.SIGHUP)
            server.wait_for_output("SIGHUP: started 2 workers")
            server.wait_for_output("Running on", count=4)
            server.wait_for_output("finished (exit code", count=2)
            requests, errors, report = wrk_report(load)
        assert requests > 0 and errors == 0, report  # and never a non-2xx (wrk_report)
        assert httpx.get(server.url + "/healthz").headers["server"] == "after"
    finally:
        assert server.stop() == 0


def test_http2_request_bodies_get_large_flow_control_windows(
    h2_server: HelloProcess, certs: Certs
) -> None:
    client = H2Client(h2_server, certs)
    client.request(1, "/healthz")
    settings: dict[int, int] = {}
    connection_window = 0
    for event in client.events():
        if isinstance(event, h2.events.RemoteSettingsChanged):
            settings.update({k: v.new_value for k, v in event.changed_settings.items()})
        elif isinstance(event, h2.events.WindowUpdated) and event.stream_id == 0:
            connection_window += event.delta
        elif isinstance(event, h2.events.StreamEnded):
            break
    client.sock.close()
    assert settings[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE] == 1024 * 1024
    assert connection_window + 65535 == 4 * 1024 * 1024
