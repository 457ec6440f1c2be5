"""HTTP/1.1 on the wire, as h1.py speaks it: pipelining, HTTP/1.0, HEAD, chunked responses,
hand-overs to Hypercorn's own protocol for WebSocket, and what it refuses."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import h11
import pytest

from tests.conftest import clean_environ
from tests.support import HelloProcess

MOUNTED = Path(__file__).parent / "mounted"


@pytest.fixture(scope="module")
def server() -> Iterator[HelloProcess]:
    flags = ["--bind", "127.0.0.1:0", "--pythonpath", str(MOUNTED), "--mount", "/s=streams:app"]
    flags += ["--mount", "/star=starlette_site:app"]
    process = HelloProcess(flags, env=clean_environ())
    try:
        yield process
    finally:
        process.kill()


def connect(server: HelloProcess) -> socket.socket:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.settimeout(10)
    return sock


Read = tuple[h11.Response, bytes, list[tuple[bytes, bytes]]]  # head, body, trailers


def responses(sock: socket.socket, count: int) -> list[tuple[h11.Response, bytes]]:
    """Read ``count`` responses off ``sock`` with h11 as the client's parser."""
    return [(head, body) for head, body, _ in read_responses(sock, count)]


def read_responses(sock: socket.socket, count: int) -> list[Read]:
    """``count`` responses off ``sock``, read by h11: each one's head, body and trailers."""
    client = h11.Connection(h11.CLIENT)
    got: list[Read] = []
    while len(got) < count:
        client.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))  # pretend
        client.send(h11.EndOfMessage())
        head: h11.Response | None = None
        body = b""
        while True:
            event = client.next_event()
            if event is h11.NEED_DATA:
                client.receive_data(sock.recv(65536))
            elif isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                got.append((head, body, list(event.headers)))
                break
        if len(got) < count:
            client.start_next_cycle()
    return got


def test_responses_come_from_h1(server: HelloProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")


def test_pipelined_requests_are_answered_in_order(server: HelloProcess) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /s/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
            b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        (health, _), (echo, size), (ready, _) = responses(sock, 3)
    assert (health.status_code, echo.status_code, ready.status_code) == (200, 200, 200)
    assert size == b"5"


def test_streamed_response_is_chunked(server: HelloProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /s/stream HTTP/1.1\r\nHost: x\r\n\r\n")
        ((head, body),) = responses(sock, 1)
    assert dict(head.headers)[b"transfer-encoding"] == b"chunked"
    assert body == b"one,two,three"


def test_http10_closes_unless_asked_to_keep_alive(server: HelloProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):  # the server closes after the response
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ") and b"connection: close" in answer.lower()
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        first = sock.recv(65536)
        sock.sendall(b"GET /readyz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        second = sock.recv(65536)
    assert b"connection: keep-alive" in first.lower() and second.startswith(b"HTTP/1.1 200 ")


def test_head_sends_headers_only(server: HelloProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while data.count(b"HTTP/1.1 200 ") < 2:
            data += sock.recv(65536)
    head, rest = data.split(b"\r\n\r\n", 1)
    assert b"content-length: " in head.lower()
    assert rest.startswith(b"HTTP/1.1 200 ")  # no body between the two responses


def test_chunked_request_body(server: HelloProcess) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"POST /s/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        )
        ((head, body),) = responses(sock, 1)
    assert head.status_code == 200 and body == b"11"


def test_websocket_is_handed_to_hypercorns_protocol(server: HelloProcess) -> None:
    import wsproto
    import wsproto.events

    client = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    with connect(server) as sock:
        sock.sendall(client.send(wsproto.events.Request(host="x", target="/s/ws")))
        got: list[object] = []
        while not any(isinstance(e, wsproto.events.TextMessage) for e in got):
            client.receive_data(sock.recv(65536))
            for event in client.events():
                got.append(event)
                if isinstance(event, wsproto.events.AcceptConnection):
                    sock.sendall(client.send(wsproto.events.Message(data="hi")))
    texts = [e.data for e in got if isinstance(e, wsproto.events.TextMessage)]
    assert texts == ["echo: hi"]


def test_an_upgrade_after_a_request_is_refused(server: HelloProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        responses(sock, 1)
        sock.sendall(
            b"GET /s/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400 ")


def test_without_httptools_h11_parses_for_the_same_protocol() -> None:
    """Where httptools cannot be imported, h11 parses the requests and the same protocol
    (h1.py) answers them: pipelined requests in order, its own head ("OK")."""
    block = "import sys; sys.modules['httptools'] = None; from hello.cli import main; main()"
    command = [sys.executable, "-c", block]
    process = HelloProcess(["--bind", "127.0.0.1:0"], command=command, env=clean_environ())
    try:
        with connect(process) as sock:
            request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            sock.sendall(request * 2 + b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = responses(sock, 3)
        assert [head.status_code for head, _ in answer] == [200, 200, 404], answer
        assert answer[0][0].reason == b"OK"
        assert process.count_output("Traceback") == 0
    finally:
        assert process.stop() == 0


def test_trailers_go_to_a_client_that_takes_them(server: HelloProcess) -> None:
    """An app's trailers end a chunked body for a client that said TE: trailers; to one
    that did not, the body goes with its length and no trailers."""
    with connect(server) as sock:
        sock.sendall(b"GET /s/trailers/a HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n")
        [(head, body, fields)] = read_responses(sock, 1)
        assert (head.status_code, body, fields) == (200, b"body", [(b"x-checksum", b"abc123")])
        assert (b"transfer-encoding", b"chunked") in head.headers
    with connect(server) as sock:
        sock.sendall(b"GET /s/trailers/b HTTP/1.1\r\nHost: x\r\n\r\n")
        [(head, body, fields)] = read_responses(sock, 1)
        assert (head.status_code, body, fields) == (200, b"body", [])
        assert (b"content-length", b"4") in head.headers


def test_starlettes_file_response_is_sent_by_path(server: HelloProcess) -> None:
    """Starlette's FileResponse takes ASGI path send where the server offers it, as hello's
    HTTP/1.1 now does: the file arrives whole, with the length Starlette gave."""
    source = (MOUNTED / "starlette_site.py").read_bytes()
    with connect(server) as sock:
        sock.sendall(b"GET /star/source HTTP/1.1\r\nHost: x\r\n\r\n")
        [(head, body, _)] = read_responses(sock, 1)
    assert (head.status_code, body) == (200, source)
    assert (b"content-length", str(len(source)).encode()) in head.headers


def test_a_head_over_the_limit_in_one_piece_is_431(server: HelloProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"x" * 20_000 + b"\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 431 ")


def test_a_pipelining_flood_is_answered_in_order(server: HelloProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 200)
        answers = responses(sock, 200)
    assert [head.status_code for head, _ in answers] == [200] * 200


def send_until_blocked(sock: socket.socket, total: int) -> int:
    """Send up to ``total`` body bytes; stop once a send cannot go on for a second (nobody
    reads them). How many were sent."""
    chunk = b"x" * 65536
    sock.settimeout(1.0)
    sent = 0
    try:
        while sent < total:
            sent += sock.send(chunk[: total - sent])
    except TimeoutError:
        pass
    sock.settimeout(10)
    return sent


def send_rest(sock: socket.socket, sent: int, total: int) -> None:
    chunk = b"x" * 65536
    while sent < total:
        part = chunk[: total - sent]
        sock.sendall(part)
        sent += len(part)


def release(server: HelloProcess, name: str) -> None:
    with connect(server) as other:
        other.sendall(b"GET /s/release/%b HTTP/1.1\r\nHost: x\r\n\r\n" % name.encode())
        assert responses(other, 1)[0][0].status_code == 200


def test_a_body_the_app_does_not_take_stops_the_reading(server: HelloProcess) -> None:
    """Backpressure: while the app holds on to a request body, hello stops reading it (the
    client's sends block once the buffers are full); when the app reads on, all of it arrives."""
    total = 64 * 1024 * 1024
    with connect(server) as sock:
        sock.sendall(b"POST /s/hold/a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % total)
        sent = send_until_blocked(sock, total)
        assert sent < total  # else hello read (and buffered) the whole body
        release(server, "a")
        send_rest(sock, sent, total)
        ((head, body),) = responses(sock, 1)
    assert head.status_code == 200
    assert body == str(total).encode()


def test_the_body_of_a_request_answered_early_is_read_and_dropped(server: HelloProcess) -> None:
    """An app that answers without reading the body: hello reads on (and drops) the rest, so
    the connection is ready for its next request."""
    total = 16 * 1024 * 1024
    with connect(server) as sock:
        sock.sendall(b"POST /s/late/b HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % total)
        sent = send_until_blocked(sock, total)
        assert sent < total
        release(server, "b")
        send_rest(sock, sent, total)
        sock.sendall(b"GET /s/stream HTTP/1.1\r\nHost: x\r\n\r\n")
        (early, _), (after, body) = responses(sock, 2)
    assert early.status_code == after.status_code == 200
    assert body == b"one,two,three"
