"""Property-based tests against a real server: generated and mutated HTTP/1.1 requests, judged
against h11 (a differential test), and random HTTP/2 frame sequences after a valid preface.

For every HTTP/1.1 request, three things hold: hello never sends more responses than the
requests h11 finds in the same bytes (so nothing is smuggled), hello refuses whatever h11
refuses, and hello serves whatever h11 accepts, except where hello is deliberately stricter
(``stricter_than_h11`` lists each case and its reason). Afterwards the server's log holds no
exception. Examples are derandomized under CI (the same ones every run); elsewhere each run
searches anew (HELLO_FUZZ_EXAMPLES sets how many).
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import h11
import hpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import clean_environ
from tests.h2client import host_port
from tests.support import HelloProcess

pytestmark = pytest.mark.slow

MOUNTED = Path(__file__).parent / "mounted"
EXAMPLES = int(os.environ.get("HELLO_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
READ_TIMEOUT = 0.3  # seconds of silence after which a connection is taken as waiting
SENTINEL = b"GET /a/ok HTTP/1.1\r\nHost: sentinel\r\nConnection: close\r\n\r\n"
REFUSALS = {400, 431, 501}


@pytest.fixture(scope="module")
def server() -> Iterator[HelloProcess]:
    args = ["--bind", "127.0.0.1:0", "--pythonpath", str(MOUNTED)]
    args += ["--mount", "/a=asgi:misbehaving:asgi_app", "--header-timeout", "2"]
    process = HelloProcess(args, env=clean_environ())
    try:
        yield process
    finally:
        process.kill()
        assert "Traceback" not in process.stderr, process.stderr
        assert "Error in ASGI" not in process.stderr, process.stderr


def exchange(server: HelloProcess, data: bytes) -> bytes:
    with socket.create_connection(host_port(server), timeout=READ_TIMEOUT) as sock:
        try:
            sock.sendall(data)
        except OSError:
            pass  # refused and closed before all was sent
        received = bytearray()
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return bytes(received)


# --- HTTP/1.1 ---

METHODS = [b"GET", b"POST", b"HEAD", b"PUT", b"OPTIONS", b"get", b"FOO", b"PRI"]
TARGETS = [b"/a/ok", b"/a/ok?x=1", b"http://h/a/ok", b"/a/missing", b"*", b"/a/%41/ok"]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/1.2", b"HTTP/2.0", b"HTTP/1"]
NAMES = [
    b"Host",
    b"Content-Length",
    b"Transfer-Encoding",
    b"Connection",
    b"Expect",
    b"X-A",
    b"host",
    b"Host ",
]
VALUES = [
    b"h",
    b"",
    b"0",
    b"3",
    b"03",
    b"-1",
    b"3, 3",
    b"chunked",
    b"Chunked",
    b"gzip, chunked",
    b"chunked, gzip",
    b"close",
    b"keep-alive",
    b"100-continue",
    b" padded ",
    b"a\x00b",
    b"a\x7fb",
    b"a\x01b",
    b"99999999999999999999",
]
BODIES = [
    b"",
    b"abc",
    b"3\r\nabc\r\n0\r\n\r\n",
    b"3;ext=1\r\nabc\r\n0\r\n\r\n",
    b"0\r\n\r\n",
    b"GET /a/ok HTTP/1.1\r\nHost: smuggled\r\n\r\n",
]
NOISE = [b" ", b"\t", b"\r", b"\n", b"\x00", b":", b"a", b"0", b"\r\n", b"\r\n "]


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    eol = draw(st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n"]))
    body = draw(st.sampled_from(BODIES))
    line = b" ".join(
        [
            draw(st.sampled_from(METHODS)),
            draw(st.sampled_from(TARGETS)),
            draw(st.sampled_from(VERSIONS)),
        ]
    )
    lines = [line]
    if draw(st.booleans()):
        lines.append(b"Host: h")
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from(NAMES))
        value = draw(st.sampled_from([*VALUES, str(len(body)).encode()]))
        lines.append(name + b":" + draw(st.sampled_from([b" ", b"", b"\t"])) + value)
    data = bytearray(eol.join(lines) + eol + eol + body)
    for _ in range(draw(st.integers(0, 2))):  # mutations
        at = draw(st.integers(0, len(data)))
        noise = draw(st.sampled_from(NOISE))
        if draw(st.booleans()):
            data[at:at] = noise
        else:
            data[at : at + len(noise)] = noise
    return bytes(data)


def h11_requests(data: bytes) -> tuple[int, str]:
    """How many whole requests h11 reads from ``data``, and how it stops: ``refused``,
    ``incomplete`` or ``closed``."""
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(data)
    complete = 0
    try:
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
                return complete, "incomplete"
            if event is h11.PAUSED:
                if connection.our_state is not h11.SEND_RESPONSE:
                    return complete, "closed"
                connection.send(h11.Response(status_code=200, headers=[("content-length", "0")]))
                connection.send(h11.EndOfMessage())
                connection.start_next_cycle()  # LocalProtocolError if either side must close
            elif isinstance(event, h11.EndOfMessage):
                complete += 1
    except h11.RemoteProtocolError:
        return complete, "refused"
    except h11.LocalProtocolError:
        return complete, "closed"


def statuses(answer: bytes) -> list[int]:
    """The final responses' statuses in ``answer`` (the app's bodies never hold a status
    line); [0] for an HTTP/2 GOAWAY (an invalid h2c preface)."""
    if answer.startswith(b"\x00\x00\x00\x04"):
        return [0]
    found = [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]
    return [code for code in found if code >= 200]


LLHTTP_METHODS = {b"GET", b"POST", b"HEAD", b"PUT", b"OPTIONS"}


def stricter_than_h11(head: bytes) -> str | None:
    """Why hello (llhttp in strict mode, and heads.py) refuses a request h11 accepts, if it
    may: each is a refusal RFC 9112 allows, kept because it closes a smuggling door."""
    lines = head.split(b"\n")
    request_line = lines[0].rstrip(b"\r").split(b" ")
    names = [line.split(b":")[0].strip().lower() for line in lines[1:] if b":" in line]
    values = [line.partition(b":")[2].strip() for line in lines[1:] if b":" in line]
    if request_line[0] == b"PRI":
        return "PRI starts HTTP/2's preface: the connection is handed to HTTP/2"
    if re.search(rb"\n[ \t]", head):
        return "obs-fold (RFC 9112 5.2: a server may reject it)"
    if re.search(rb"(?<!\r)\n", head):
        return "a bare LF as a line end (9112 2.2: may be accepted, not must)"
    if re.search(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", head):
        return "a control character (9110 5.5: not field content)"
    if request_line[0] not in LLHTTP_METHODS:
        return "a method llhttp does not know, or in lower case"
    if len(request_line) > 2 and request_line[2] not in (b"HTTP/1.0", b"HTTP/1.1"):
        return "an HTTP version other than 1.0 and 1.1"
    lengths = [v for n, v in zip(names, values, strict=True) if n == b"content-length"]
    if len(lengths) > 1 or any(b"," in v for v in lengths):
        return "more than one Content-Length, even if equal (9110 8.6: may be rejected)"
    if lengths and b"transfer-encoding" in names:
        return "Content-Length beside Transfer-Encoding (9112 6.1: may be rejected)"
    if request_line[1:2] == [b"*"] and request_line[0] != b"OPTIONS":
        return "the asterisk form outside OPTIONS (9112 3.2.4)"
    if len(request_line) > 1 and not _TARGET_FORM.match(request_line[1]):
        return "a target of none of RFC 9112's forms (3.2), or a scheme of more than letters"
    return None


_TARGET_FORM = re.compile(rb"/|\*$|[A-Za-z]+://")


def as_h11_reads_it(data: bytes) -> bytes:
    """``data`` without the leniencies llhttp allows and h11 does not, each allowed by RFC
    9112 and unable to make one request two: empty lines before the request line (2.2: a
    server SHOULD ignore them) and runs of spaces between its parts (3: a recipient may
    parse it on whitespace)."""
    data = data.lstrip(b"\r\n")
    line, eol, rest = data.partition(b"\n")
    return re.sub(rb" {2,}", b" ", line) + eol + rest


@FUZZ
@given(data=requests())
def test_http1_requests_against_h11(server: HelloProcess, data: bytes) -> None:
    complete, end = h11_requests(as_h11_reads_it(data) + SENTINEL)
    answer = exchange(server, data + SENTINEL)
    seen = statuses(answer)
    # Never more responses than requests (one more where hello answers the one h11 refused).
    assert len(seen) <= complete + (end != "closed"), (complete, end, answer)
    first_refused = bool(seen) and seen[0] in REFUSALS | {0}
    data = as_h11_reads_it(data)
    head = data.partition(b"\r\n\r\n")[0] if b"\r\n\r\n" in data else data
    if end == "refused" and complete == 0:
        assert first_refused or not seen, ("refused by h11", answer)
    elif complete >= 1 and first_refused:
        assert stricter_than_h11(head), ("refused what h11 accepts", answer)
    elif complete >= 1:
        assert seen or stricter_than_h11(head), ("no answer to a request h11 accepts", answer)


def test_stricter_than_h11_names_each_known_case() -> None:
    assert stricter_than_h11(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b") is not None
    assert stricter_than_h11(b"get / HTTP/1.1\r\nHost: h") is not None
    assert stricter_than_h11(b"GET / HTTP/1.1\r\nHost: h\r\nX: a") is None


# --- HTTP/2 ---

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FRAME_TYPES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x20]  # DATA ... CONTINUATION, and an unknown one
STREAM_IDS = [0, 1, 1, 1, 3, 2, 2**31 - 1]


def frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    head = len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream_id.to_bytes(4, "big")
    return head + payload


@st.composite
def header_blocks(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from([b"GET", b"POST", b"CONNECT", b""]))
    headers = [(b":method", method), (b":path", draw(st.sampled_from([b"/a/ok", b"/", b""])))]
    headers += [(b":scheme", b"http"), (b":authority", b"h")]
    extra = draw(st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(VALUES)), max_size=3))
    headers += [(name.lower(), value) for name, value in extra]
    return bytes(hpack.Encoder().encode(draw(st.permutations(headers))))


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(FRAME_TYPES))
    flags = draw(st.sampled_from([0, 1, 4, 5, 8, 0x20, 0xFF]))
    stream_id = draw(st.sampled_from(STREAM_IDS))
    if kind == 1 and draw(st.booleans()):
        payload = draw(header_blocks())
    elif kind in (4, 8) and draw(st.booleans()):  # SETTINGS or WINDOW_UPDATE, well formed
        size = 6 * draw(st.integers(0, 3)) if kind == 4 else 4
        payload = draw(st.binary(min_size=size, max_size=size))
    else:
        payload = draw(st.binary(max_size=64))
    return frame(kind, flags, stream_id, payload)


@pytest.fixture(scope="module")
def h2_server(http2_engine: str) -> Iterator[HelloProcess]:
    """The fuzzing target for HTTP/2 (h2c with prior knowledge), on each engine in turn."""
    args = ["--bind", "127.0.0.1:0", "--pythonpath", str(MOUNTED), "--header-timeout", "2"]
    args += ["--mount", "/a=asgi:misbehaving:asgi_app", "--http2-engine", http2_engine]
    process = HelloProcess(args, env=clean_environ())
    try:
        yield process
        assert exchange(process, SENTINEL).startswith(b"HTTP/1.1 200 ")  # still serving
    finally:
        process.kill()
        assert "Traceback" not in process.stderr, process.stderr
        assert "Error in ASGI" not in process.stderr, process.stderr


@FUZZ
@given(sequence=st.lists(frames(), min_size=1, max_size=8))
def test_random_http2_frames_after_a_valid_preface(
    h2_server: HelloProcess, sequence: list[bytes]
) -> None:
    settings_frame = frame(4, 0, 0, b"")
    answer = exchange(h2_server, PREFACE + settings_frame + b"".join(sequence))
    assert answer[3:4] == b"\x04"  # the server's preface came first: a SETTINGS frame
    assert b"HTTP/1.1" not in answer


def test_the_server_still_serves_after_the_fuzzing(server: HelloProcess) -> None:
    assert exchange(server, SENTINEL).startswith(b"HTTP/1.1 200 ")
