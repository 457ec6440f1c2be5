"""The wire against misbehaving apps and hostile requests, on real servers: response heads and
Content-Lengths checked on every path (HTTP/1.1, HTTP/2, the WSGI bridge), RFC 9112's request
rules, HTTP/2 after an early answer, an invalid h2c preface, and the choice of engines."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import h2.errors
import h2.events
import h2.utilities
import hpack
import pytest

from hello.wire.choice import choose_engines
from tests.conftest import Certs, clean_environ
from tests.h2client import H2Client, host_port
from tests.support import HelloProcess

MOUNTED = Path(__file__).parent / "mounted"
MOUNTS = [
    "--pythonpath",
    str(MOUNTED),
    "--mount",
    "/a=asgi:misbehaving:asgi_app",
    "--mount",
    "/w=wsgi:misbehaving:wsgi_app",
]


def test_the_engines_follow_http2_engine_and_what_imports() -> None:
    auto = choose_engines("auto")
    assert auto.http2_name == "ngh2"
    assert choose_engines("h2").http2_name == "h2"  # the same protocol, on h2 (h2_engine.py)
    assert auto.http1_name == "httptools"  # installed here
    assert choose_engines("auto", "h11").http1_name == "h11"
    code = (
        "import sys; sys.modules['ngh2'] = None; sys.modules['httptools'] = None\n"
        "from hello.wire.choice import choose_engines\n"
        "from hello.errors import ConfigError\n"
        "try:\n"
        "    choose_engines('ngh2')\n"
        "except ConfigError as error:\n"
        "    print('refused:', error)\n"
        "engines = choose_engines('auto')\n"
        "print('engines:', engines.http1_name, engines.http2_name)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = done.stdout.splitlines()
    assert lines[0].startswith("refused: --http2-engine ngh2: ") and "choose h2" in lines[0]
    assert lines[1] == "engines: h11 h2"


@pytest.fixture(scope="module")
def plain() -> Iterator[HelloProcess]:
    server = HelloProcess(["--bind", "127.0.0.1:0", *MOUNTS], env=clean_environ())
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def tls(certs: Certs, http2_engine: str) -> Iterator[HelloProcess]:
    flags = ["--bind", "127.0.0.1:0", *certs.flags(), *MOUNTS, "--http2-engine", http2_engine]
    server = HelloProcess(flags, env=clean_environ())
    try:
        yield server
    finally:
        server.kill()


def exchange(server: HelloProcess, data: bytes, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Send ``data`` on a new connection; what came back, and whether the server closed."""
    with socket.create_connection(host_port(server), timeout=timeout) as sock:
        sock.sendall(data)
        received = bytearray()
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            return bytes(received), False
    return bytes(received), True


def get_then_ok(prefix: str, path: str) -> bytes:
    """A request for ``path``, then a good one on the same connection."""
    return (
        f"GET {prefix}{path} HTTP/1.1\r\nHost: x\r\n\r\nGET {prefix}/ok HTTP/1.1\r\nHost: x\r\n\r\n"
    ).encode()


@pytest.mark.parametrize("prefix", ["/a", "/w"])
@pytest.mark.parametrize("path", ["/injected", "/nul", "/bad-name", "/length-nan"])
def test_a_bad_head_becomes_a_500_and_a_close(plain: HelloProcess, prefix: str, path: str) -> None:
    answer, closed = exchange(plain, get_then_ok(prefix, path))
    assert closed
    assert answer.startswith(b"HTTP/1.1 500 ")
    assert answer.count(b"HTTP/1.1 ") == 1  # the good request after it is not read
    assert b"pwned" not in answer and b"x-note" not in answer.lower()
    line = plain.wait_for_output(f"GET {prefix}{path}: response refused: the app at {prefix}")
    assert len(line) == 1


@pytest.mark.parametrize("prefix", ["/a", "/w"])
def test_a_body_longer_than_its_length_is_cut_and_the_connection_closed(
    plain: HelloProcess, prefix: str
) -> None:
    answer, closed = exchange(plain, get_then_ok(prefix, "/long"))
    assert closed
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b"content-length: 10" in head
    assert body == b"0123456789"  # not a byte more, and no response read from the rest
    plain.wait_for_output(f"the app at {prefix}: body longer than its Content-Length of 10")


@pytest.mark.parametrize("prefix", ["/a", "/w"])
def test_a_body_shorter_than_its_length_ends_with_the_connection(
    plain: HelloProcess, prefix: str
) -> None:
    answer, closed = exchange(plain, get_then_ok(prefix, "/short"))
    assert closed
    assert answer.partition(b"\r\n\r\n")[2] == b"01234"
    plain.wait_for_output(f"the app at {prefix}: body of 5 bytes, shorter than")


def test_a_good_response_keeps_the_connection(plain: HelloProcess) -> None:
    answer, closed = exchange(plain, get_then_ok("/a", "/ok"), timeout=1.0)
    assert not closed and answer.count(b"HTTP/1.1 200 ") == 2


# RFC 9112 on the request side: each is refused with this status and a close.
REFUSED = {
    "no Host in HTTP/1.1": (b"GET /a/ok HTTP/1.1\r\n\r\n", 400),
    "two Hosts": (b"GET /a/ok HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    "obs-fold": (b"GET /a/ok HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400),
    "NUL in a value": (b"GET /a/ok HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n", 400),
    "CR in a value": (b"GET /a/ok HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", 400),
    "two Content-Lengths": (
        b"POST /a/ok HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        400,
    ),
    "Content-Length beside Transfer-Encoding": (
        b"POST /a/ok HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        400,
    ),
    "Transfer-Encoding not ending in chunked": (
        b"POST /a/ok HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        400,
    ),
    "a coding hello does not decode": (
        b"POST /a/ok HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n",
        501,
    ),
    "space before the colon": (b"GET /a/ok HTTP/1.1\r\nHost : a\r\n\r\n", 400),
    "a signed Content-Length": (
        b"POST /a/ok HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc",
        400,
    ),
    "a bad chunk size": (
        b"POST /a/ok HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",
        400,
    ),
}


@pytest.mark.parametrize("case", REFUSED)
def test_request_rules_of_rfc_9112(plain: HelloProcess, case: str) -> None:
    request, status = REFUSED[case]
    answer, closed = exchange(plain, request + b"GET /a/ok HTTP/1.1\r\nHost: a\r\n\r\n")
    assert closed
    assert answer.startswith(b"HTTP/1.1 %d " % status)
    assert answer.count(b"HTTP/1.1 ") == 1 and b"Traceback" not in answer


def test_http10_without_host_is_served(plain: HelloProcess) -> None:
    answer, _ = exchange(plain, b"GET /a/ok HTTP/1.0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"ok")


def test_an_invalid_h2c_preface_gets_goaway_protocol_error(plain: HelloProcess) -> None:
    answer, closed = exchange(plain, b"INVALID CONNECTION PREFACE\r\n\r\n")
    assert closed
    settings, goaway = answer[:9], answer[9:]
    assert settings[3] == 0x4 and goaway[3] == 0x7  # frame types: SETTINGS, GOAWAY
    assert int.from_bytes(goaway[13:17], "big") == h2.errors.ErrorCodes.PROTOCOL_ERROR
    malformed, _ = exchange(plain, b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n")
    assert malformed.startswith(b"HTTP/1.1 400 ")  # an HTTP/1.1 client still gets HTTP/1.1


@pytest.mark.parametrize("prefix", ["/a", "/w"])
def test_http2_refuses_a_bad_head_and_resets_a_wrong_length(
    tls: HelloProcess, certs: Certs, prefix: str
) -> None:
    client = H2Client(tls, certs)
    client.request(1, f"{prefix}/injected")
    client.request(3, f"{prefix}/long")
    client.request(5, f"{prefix}/short")
    client.request(7, f"{prefix}/ok")
    statuses: dict[int, bytes] = {}
    reset: dict[int, int] = {}
    ended: set[int] = set()
    headers: dict[int, dict[bytes, bytes]] = {}
    for event in client.events():
        if isinstance(event, h2.events.ResponseReceived):
            headers[event.stream_id] = dict(event.headers)
            statuses[event.stream_id] = headers[event.stream_id][b":status"]
        elif isinstance(event, h2.events.StreamReset):
            reset[event.stream_id] = event.error_code
        elif isinstance(event, h2.events.StreamEnded):
            ended.add(event.stream_id)
        if len(ended) + len(reset) == 4:
            break
    client.sock.close()
    assert statuses[1] == b"500" and 1 in ended and b"x-note" not in headers[1]
    assert reset == {3: h2.errors.ErrorCodes.INTERNAL_ERROR, 5: h2.errors.ErrorCodes.INTERNAL_ERROR}
    assert statuses[7] == b"200" and 7 in ended  # the connection and its other streams go on


def test_http2_data_after_an_early_answer_leaves_the_connection_working(
    tls: HelloProcess, certs: Certs
) -> None:
    """Hypercorn's issue #329: DATA for a stream already answered raised KeyError in the
    connection's task, ending every stream on it."""
    client = H2Client(tls, certs)
    headers = [(":method", "POST"), (":path", "/"), (":scheme", "https")]
    client.conn.send_headers(1, [*headers, (":authority", "localhost")], end_stream=False)
    client.flush()
    answered = next(e for e in client.events() if isinstance(e, h2.events.ResponseReceived))
    assert dict(answered.headers)[b":status"] == b"405"  # the index page takes GET and HEAD
    for _ in range(3):
        client.conn.send_data(1, b"x" * 1000)
    client.conn.end_stream(1)
    client.request(3, "/a/ok")
    statuses, bodies = client.read_all([3])
    client.sock.close()
    assert statuses[3] == b"200" and bodies[3] == b"ok"
    assert "Traceback" not in tls.stderr


def test_h2c_by_upgrade_answers_the_request_on_stream_one(http2_engine: str) -> None:
    """An HTTP/1.1 request with Upgrade: h2c (nghttp -u) becomes HTTP/2's stream 1; the
    next request goes on the same connection."""
    flags = ["--bind", "127.0.0.1:0", "--http2-engine", http2_engine]
    server = HelloProcess(flags, env=clean_environ())
    try:
        done = subprocess.run(
            ["nghttp", "-u", "-v", "-m", "2", server.url + "/hello?name=Ada"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert "HTTP Upgrade success" in done.stdout, done.stdout
        streams = re.findall(r"recv \(stream_id=(\d+)\) :status: 200", done.stdout)
        assert streams[0] == "1" and len(streams) == 2, streams
        assert done.stdout.count("<title>Hello, Ada!</title>") == 2
        assert server.stop() == 0
        assert "Traceback" not in server.stderr, server.stderr
    finally:
        server.kill()


def test_http2_oversized_head_gets_431_not_a_reset(tls: HelloProcess, certs: Certs) -> None:
    """200 KB of headers: 431, which says what is wrong, not REFUSED_STREAM, which would tell
    the client to retry. (curl itself refuses to send a header block over 64 KiB.)"""
    client = H2Client(tls, certs)
    client.request(1, "/", ("x-big", "x" * 200_000))
    statuses, _ = client.read_all([1])
    client.sock.close()
    assert statuses == {1: b"431"}


def test_requests_before_a_bad_one_are_answered_first(plain: HelloProcess) -> None:
    good = b"GET /a/ok HTTP/1.1\r\nHost: a\r\n\r\n"
    answer, closed = exchange(plain, good + good + b"GET /a/ok HTTP/1.1\r\n\r\n")
    assert closed
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", answer) == [b"200", b"200", b"400"]


def test_bytes_after_a_request_that_ends_the_connection_are_ignored(plain: HelloProcess) -> None:
    answer, closed = exchange(plain, b"GET /a/ok HTTP/1.0\r\n\r\n" + b"\x00garbage\r\n\r\n")
    assert closed
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", answer) == [b"200"]


def test_the_log_holds_no_exception(plain: HelloProcess, tls: HelloProcess) -> None:
    """Run last in this module: whatever the tests above sent, no connection task died."""
    for server in (plain, tls):
        assert "Traceback" not in server.stderr and "Error in ASGI" not in server.stderr


@pytest.mark.parametrize("http2_engine", ["ngh2"], indirect=True)  # its frame gate
def test_http2_frames_libnghttp2_would_ignore_end_the_connection(
    tls: HelloProcess, certs: Certs
) -> None:
    """RFC 9113 asks for a connection error where libnghttp2 would ignore the frame: HEADERS
    reusing a lower stream identifier (PROTOCOL_ERROR), DATA after the client's own
    RST_STREAM (STREAM_CLOSED). wire/http2_gate.py answers both; the log says which."""
    for code, frames in (
        (h2.errors.ErrorCodes.PROTOCOL_ERROR, "lower"),
        (h2.errors.ErrorCodes.STREAM_CLOSED, "after reset"),
    ):
        client = H2Client(tls, certs)
        client.request(5 if frames == "lower" else 1, "/a/ok")
        if frames == "lower":  # a block of literals, decodable by itself, for stream 3
            block = hpack.Encoder().encode(
                [
                    (b":method", b"GET"),
                    (b":path", b"/"),
                    (b":scheme", b"https"),
                    (b":authority", b"localhost"),
                ]
            )
            raw = len(block).to_bytes(3, "big") + b"\x01\x05" + (3).to_bytes(4, "big") + block
        else:
            client.conn.reset_stream(1, h2.errors.ErrorCodes.CANCEL)
            client.flush()
            raw = b"\x00\x00\x01\x00\x01" + (1).to_bytes(4, "big") + b"x"  # DATA, END_STREAM
        client.sock.sendall(raw)
        ended = [e for e in client.events() if isinstance(e, h2.events.ConnectionTerminated)]
        client.sock.close()
        assert ended and ended[0].error_code == code, (frames, ended)
    tls.wait_for_output("HEADERS opening stream 3, below stream 5")
    tls.wait_for_output("DATA on stream 1, closed")
