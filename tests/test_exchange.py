"""The rules of one request's exchange, on every protocol and engine, in this process.

Each test runs over HTTP/1.1 (httptools, h11) and HTTP/2 (ngh2, h2) through
tests/inprocess.py: the protocol as hello serves it, fed bytes by a client and read back by a
real parser (h11, h2), no socket. A rule is the same on every engine; where HTTP/1.1 and
HTTP/2 must keep it differently (closing the connection against resetting a stream), the test
says both. What an engine does not do yet is marked xfail, strict: it fails the day it does.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.errors
import pytest

from hello.asgi_types import ASGIApp, Message, Receive, Scope, Send
from hello.heads import ResponseError
from tests.inprocess import (
    ENGINES,
    HTTP1_ENGINES,
    HTTP2_ENGINES,
    H1Client,
    H2Client,
    Response,
    ServerConnection,
    client,
    quiet_turns,
    settings,
    until,
)

pytestmark = pytest.mark.anyio

INTERNAL_ERROR = 2  # HTTP/2's error code for a stream the server could not finish
CANCEL = 8


def missing(engine: str, engines: tuple[str, ...], what: str) -> Any:
    """``engine`` as a parameter, marked as not doing ``what`` yet if it is one of ``engines``."""
    if engine not in engines:
        return engine
    return pytest.param(engine, marks=pytest.mark.xfail(strict=True, reason=f"{engine}: {what}"))


def app_sending(headers: list[tuple[bytes, bytes]], *bodies: bytes, status: int = 200) -> ASGIApp:
    """An app that answers ``status`` with ``headers`` and the ``bodies`` in turn."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        for index, body in enumerate(bodies):
            more = index < len(bodies) - 1
            await send({"type": "http.response.body", "body": body, "more_body": more})

    return app


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """The request body back, once it is all in."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def fetch(
    engine: str,
    app: ASGIApp,
    method: str = "GET",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    **flags: Any,
) -> tuple[Response, bool]:
    """One exchange on a new connection: the response, and whether the server closed the
    connection after it."""
    async with ServerConnection(engine, app, settings(**flags)) as server:
        response = await client(server).fetch(method, "/", headers or [], body)
        await quiet_turns()  # a close that follows the response has come by then
        return response, server.closed


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_request_is_answered_and_the_connection_kept(engine: str) -> None:
    app = app_sending([(b"x-app", b"1")], b"hel", b"lo")
    async with ServerConnection(engine, app) as server:
        speaker = client(server)
        for _ in range(3):
            response = await speaker.fetch("GET", "/")
            assert (response.status, response.body, response.complete) == (200, b"hello", True)
            assert response.header(b"x-app") == b"1"
        assert not server.closed


@pytest.mark.parametrize("engine", ENGINES)
async def test_head_gets_the_headers_and_no_body(engine: str) -> None:
    app = app_sending([(b"content-length", b"5")], b"hello")
    response, _ = await fetch(engine, app, "HEAD")
    assert (response.status, response.body, response.header(b"content-length")) == (
        200,
        b"",
        b"5",
    )


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    "headers",
    [
        [(b"bad name", b"x")],
        [(b"x-bad", b"a\r\nb")],
        [(b"x-bad", b"a\x00b")],
        [(b"content-length", b"1"), (b"content-length", b"2")],
        [(b"content-length", b"-1")],
    ],
    ids=["space in a name", "CRLF in a value", "NUL in a value", "two lengths", "bad length"],
)
async def test_a_broken_head_becomes_a_500(engine: str, headers: list[tuple[bytes, bytes]]) -> None:
    """None of the app's head goes out: the client gets a 500 with no body. HTTP/1.1 closes
    the connection after it; HTTP/2 keeps it for other streams."""
    response, closed = await fetch(engine, app_sending(headers, b"x"))
    assert (response.status, response.body, response.complete) == (500, b"", True)
    assert not any(name in (b"bad name", b"x-bad") for name, _ in response.headers)
    assert closed is (engine not in HTTP2_ENGINES)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("status", [1000, 42])
async def test_a_status_of_other_than_three_digits_becomes_a_500(engine: str, status: int) -> None:
    """As a broken header does: a 500, and HTTP/1.1 closes the connection after it."""
    response, closed = await fetch(engine, app_sending([], b"x", status=status))
    assert (response.status, response.body, response.complete) == (500, b"", True)
    assert closed is (engine not in HTTP2_ENGINES)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("bad", [{"status": 1000}, {"headers": [(b"x-bad", b"a\nb")]}])
async def test_an_app_that_answers_its_refused_head_itself_still_ends_the_connection(
    engine: str, bad: dict[str, Any]
) -> None:
    """An app (or one of hello's layers) that catches the refusal of its head and answers a
    500 of its own: that goes out, and on HTTP/1.1 the connection still closes after it."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, **bad})
        except ResponseError:
            await send({"type": "http.response.start", "status": 500, "headers": []})
            await send({"type": "http.response.body", "body": b"sorry"})

    response, closed = await fetch(engine, app)
    assert (response.status, response.body, response.complete) == (500, b"sorry", True)
    assert closed is (engine not in HTTP2_ENGINES)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    "declared,bodies",
    [(3, [b"12345"]), (4, [b"123", b"45"]), (10, [b"12345"]), (10, [b"123", b"45"])],
    ids=["long", "long in pieces", "short", "short in pieces"],
)
async def test_a_body_that_breaks_its_content_length_never_reads_as_whole(
    engine: str, declared: int, bodies: list[bytes]
) -> None:
    """No byte past the declared length reaches the client, and a short body is never taken
    for a whole one: HTTP/1.1 closes the connection, HTTP/2 resets the stream. (A long body
    may end as a whole response of the declared length, cut there: its bytes are the app's.)"""
    app = app_sending([(b"content-length", str(declared).encode())], *bodies)
    response, closed = await fetch(engine, app)
    sent = b"".join(bodies)
    assert sent.startswith(response.body) and len(response.body) <= declared
    if engine in HTTP2_ENGINES:
        assert response.reset == INTERNAL_ERROR and not response.complete
        assert not closed
    else:
        assert closed
        assert not response.complete or len(response.body) == declared < len(sent)


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_head_over_the_limit_gets_431(engine: str) -> None:
    response, _ = await fetch(engine, echo, headers=[("x-big", "a" * 5000)], max_header_size=4096)
    assert response.status == 431


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_head_within_the_limit_is_served(engine: str) -> None:
    response, _ = await fetch(engine, echo, headers=[("x-big", "a" * 3000)], max_header_size=4096)
    assert response.status == 200


def informational(speaker: H1Client | H2Client, stream: int | None) -> list[int]:
    """The informational statuses (1xx) that arrived so far for the request under way."""
    speaker.read()
    if isinstance(speaker, H2Client):
        assert stream is not None
        return speaker.responses[stream].informational
    return speaker.current.informational if speaker.current else []


EARLY_CONTINUE: dict[str, str] = {}


@pytest.mark.parametrize(
    "engine", [missing(e, tuple(EARLY_CONTINUE), EARLY_CONTINUE.get(e, "")) for e in ENGINES]
)
async def test_expect_100_continue_is_answered_when_the_app_reads(engine: str) -> None:
    """The client holds its body back until told 100 Continue, which the server says once
    the app asks for the body, and not before: an app that answers without reading (401,
    413) spares the client the upload."""
    read = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await read.wait()
        await echo(scope, receive, send)

    async with ServerConnection(engine, app) as server:
        speaker = client(server)
        headers = [("expect", "100-continue"), ("content-length", "3")]
        stream = speaker.request("POST", "/", headers, end=False)
        await quiet_turns()  # the app has not asked yet
        assert informational(speaker, stream) == []
        read.set()
        await until(lambda: 100 in informational(speaker, stream), "100 Continue", timeout=1)
        if isinstance(speaker, H2Client):
            assert isinstance(stream, int)
            speaker.send_data(stream, b"abc", end=True)
            response = await speaker.response(stream)
        else:
            speaker.send(b"abc")
            response = await speaker.response()
        assert 100 in response.informational
        assert (response.status, response.body) == (200, b"abc")


@pytest.mark.parametrize("engine", ENGINES)
async def test_an_app_that_answers_without_reading_the_body(engine: str) -> None:
    """The app answers while the client is still sending a large body: the response comes
    whole, the rest of the body is taken (and dropped), and the connection serves the next
    request (HTTP/1.1 after the body's end, HTTP/2 on a new stream)."""
    app = app_sending([(b"content-length", b"2")], b"no")
    async with ServerConnection(engine, app) as server:
        speaker = client(server)
        size = 256 * 1024
        first = speaker.request("POST", "/", [("content-length", str(size))], end=False)
        if isinstance(speaker, H2Client):
            assert isinstance(first, int)
            speaker.send_data(first, b"x" * 16384)
            response = await speaker.response(first)
        else:
            speaker.send(b"x" * 16384)
            response = await speaker.response()
        assert (response.status, response.body, response.complete) == (200, b"no", True)
        if isinstance(speaker, H1Client):
            speaker.send(b"x" * (size - 16384))  # the rest, then the next request
        following = await speaker.fetch("GET", "/")
        assert (following.status, following.body) == (200, b"no")
        assert not server.closed


@pytest.mark.parametrize("engine", ENGINES)
async def test_the_app_learns_the_client_is_gone_mid_response(engine: str) -> None:
    """A client that leaves while the app streams its response: the app's receive() says
    http.disconnect (once the request's body was given), and its later sends do not raise."""
    seen: list[Message] = []
    sent_after = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "http.request"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        seen.append(await receive())
        await send({"type": "http.response.body", "body": b"more", "more_body": True})
        sent_after.set()

    async with ServerConnection(engine, app) as server:
        speaker = client(server)
        speaker.request("GET", "/")
        await until(lambda: b"part" in server.transport.written, "the first part")
        server.client_gone()
        await until(sent_after.is_set, "the app's send after the client left")
        assert seen == [{"type": "http.disconnect"}]


@pytest.mark.parametrize("engine", ENGINES)
async def test_path_send_serves_the_file(engine: str, tmp_path: Path) -> None:
    """ASGI's path send (``http.response.pathsend``) is offered, and the file is the body."""
    path = tmp_path / "file.bin"
    path.write_bytes(bytes(range(256)) * 1024)  # 256 KiB: more than one chunk or window

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert "http.response.pathsend" in scope["extensions"]
        length = str(path.stat().st_size).encode()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", length)]}
        )
        await send({"type": "http.response.pathsend", "path": str(path)})

    response, _ = await fetch(engine, app)
    assert (response.status, response.complete) == (200, True)
    assert response.body == path.read_bytes()


def app_with_trailers(*headers: tuple[bytes, bytes]) -> ASGIApp:
    """An app that sends ``headers``, a body and a trailer, having said it would."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert "http.response.trailers" in scope["extensions"]
        start = {"type": "http.response.start", "status": 200, "headers": list(headers)}
        await send({**start, "trailers": True})
        await send({"type": "http.response.body", "body": b"da", "more_body": True})
        await send({"type": "http.response.body", "body": b"ta"})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc")]})

    return app


@pytest.mark.parametrize("engine", ENGINES)
async def test_trailers_follow_the_body_when_the_client_takes_them(engine: str) -> None:
    async with ServerConnection(engine, app_with_trailers()) as server:
        speaker = client(server)
        for _ in range(2):  # and the connection goes on after them
            response = await speaker.fetch("GET", "/", [("te", "trailers")])
            assert (response.status, response.body, response.complete) == (200, b"data", True)
            assert response.trailers == [(b"x-checksum", b"abc")]
        assert not server.closed


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    "te,headers",
    [("", []), ("trailers", [(b"content-length", b"4")])],
    ids=["client without TE", "body with a Content-Length"],
)
async def test_trailers_that_cannot_go_are_dropped(
    engine: str, te: str, headers: list[tuple[bytes, bytes]]
) -> None:
    """Trailers a response cannot carry (the client did not ask for them, or, on HTTP/1.1,
    the body is framed by Content-Length) are dropped; the response is whole."""
    app = app_with_trailers(*headers)
    async with ServerConnection(engine, app) as server:
        speaker = client(server)
        response = await speaker.fetch("GET", "/", [("te", te)] if te else [])
        assert (response.status, response.body, response.complete) == (200, b"data", True)
        if te == "" or engine in ("httptools", "h11"):
            assert response.trailers == []
        assert (await speaker.fetch("GET", "/")).body == b"data"


@pytest.mark.parametrize("engine", ENGINES)
async def test_trailers_promised_and_never_sent_leave_the_response_unfinished(
    engine: str,
) -> None:
    """An app that said it would send trailers and returned without them has not ended its
    response: the client must not take it for a whole one. HTTP/1.1 closes the connection
    without the chunked body's end; HTTP/2 resets the stream (its DATA may go with it)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "trailers": True})
        await send({"type": "http.response.body", "body": b"data"})

    async with ServerConnection(engine, app) as server:
        response = await client(server).fetch("GET", "/", [("te", "trailers")])
        assert b"data".startswith(response.body) and not response.complete
        if engine in HTTP2_ENGINES:
            assert response.reset == INTERNAL_ERROR
        else:
            await until(lambda: server.closed, "the connection's close")


@pytest.mark.parametrize("engine", ["httptools", "h11"])
async def test_a_plain_connection_that_opens_with_the_http2_preface_is_served_http2(
    engine: str,
) -> None:
    """h2c with prior knowledge: the HTTP/1.1 engine sees the preface and the connection goes
    on as HTTP/2 (wire/choice.py), on the HTTP/2 engine of the process, with what it had read."""
    async with ServerConnection(engine, app_sending([], b"over h2")) as server:
        speaker = H2Client(server)
        response = await speaker.fetch("GET", "/")
        assert (response.status, response.body, response.complete) == (200, b"over h2", True)
        assert type(server.protocol.protocol).__module__ == "hello.wire.http2"


@pytest.mark.parametrize("engine", ["httptools", "h11"])
async def test_an_h2c_upgrade_answers_the_request_over_http2(engine: str) -> None:
    """Upgrade: h2c on the first request: 101, then that request's response on stream 1."""
    async with ServerConnection(engine, app_sending([], b"upgraded")) as server:
        head = (
            "GET / HTTP/1.1\r\nhost: x\r\nconnection: Upgrade, HTTP2-Settings\r\n"
            "upgrade: h2c\r\nhttp2-settings: \r\n\r\n"  # no settings: the defaults
        )
        server.client_sends(head.encode())
        await until(lambda: b"\r\n\r\n" in server.transport.written, "the 101")
        switching, _, rest = bytes(server.take()).partition(b"\r\n\r\n")
        assert switching.startswith(b"HTTP/1.1 101 ")
        speaker = H2Client.upgraded(server, rest)
        response = await speaker.response(1)
        assert (response.status, response.body, response.complete) == (200, b"upgraded", True)


PATHSEND_DROPS_TRAILERS: dict[str, str] = {}


@pytest.mark.parametrize(
    "engine",
    [
        missing(e, tuple(PATHSEND_DROPS_TRAILERS), PATHSEND_DROPS_TRAILERS.get(e, ""))
        for e in ENGINES
    ],
)
async def test_trailers_follow_a_path_send(engine: str, tmp_path: Path) -> None:
    """A file sent by path, then trailers: the body is the file, the trailers follow, and the
    connection serves the next request."""
    path = tmp_path / "file.bin"
    path.write_bytes(b"x" * 100_000)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        start = {"type": "http.response.start", "status": 200, "headers": [], "trailers": True}
        await send(start)
        await send({"type": "http.response.pathsend", "path": str(path)})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc")]})

    async with ServerConnection(engine, app) as server:
        speaker = client(server)
        for _ in range(2):
            response = await speaker.fetch("GET", "/", [("te", "trailers")])
            assert (response.status, response.complete) == (200, True)
            assert response.body == path.read_bytes()
            assert response.trailers == [(b"x-checksum", b"abc")]


BAD_REQUESTS = {
    "two lengths": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    "length and chunked": (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
    ),
    "space before the colon": b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    "NUL in a value": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "a chunk size that is no number": (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    ),
    "no Host": b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n",
    "a line without a colon": b"GET / HTTP/1.1\r\nHost: x\r\nnonsense\r\n\r\n",
}


@pytest.mark.parametrize("engine", HTTP1_ENGINES)
@pytest.mark.parametrize("bad", BAD_REQUESTS.values(), ids=list(BAD_REQUESTS))
async def test_a_malformed_request_gets_400_after_the_one_before(engine: str, bad: bytes) -> None:
    """On either HTTP/1.1 engine: the request before the bad bytes is answered, then a 400
    ends the connection, and the app never sees the bad request."""
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["path"])
        await echo(scope, receive, send)

    async with ServerConnection(engine, app) as server:
        server.client_sends(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n" + bad)
        await until(lambda: server.closed, "the connection's close")
        written = server.take()
    # Each response's status line (the bodies are empty: no line of theirs can match).
    assert re.findall(rb"^HTTP/1.1 (\d{3}) ", written, re.MULTILINE) == [b"200", b"400"]
    assert seen == ["/first"]


@pytest.mark.parametrize("engine", HTTP2_ENGINES)
async def test_a_reset_flood_in_one_read_ends_the_connection_once(engine: str) -> None:
    """400 streams opened and reset at once (CVE-2023-44487), all in one read: past the
    engine's burst, GOAWAY and the close; the server reads nothing more."""
    async with ServerConnection(engine, echo) as server:
        speaker = H2Client(server)
        fields = [(":method", "GET"), (":scheme", "http"), (":path", "/")]
        fields.append((":authority", "example.com"))
        for stream_id in range(1, 2 * 400, 2):
            speaker.conn.send_headers(stream_id, fields, end_stream=True)
            speaker.conn.reset_stream(stream_id, CANCEL)
        speaker.flush()  # one read for the server
        await until(lambda: server.closed, "the connection's close")
        speaker.read()
    assert speaker.goaway is not None and speaker.goaway != 0


def test_the_h2_engine_ends_a_connection_once_however_many_resets_one_read_holds() -> None:
    """The h2 engine fed a reset flood in one piece (http2.py's frame gate feeds it a reset
    at a time; the engine itself must not rely on that): one ConnectionClosed, no raise."""
    from hello.wire.h2_engine import Configuration, ConnectionClosed
    from hello.wire.h2_engine import Connection as H2Engine

    engine = H2Engine(Configuration(stream_reset_rate_limit=(10, 1)))
    engine.initiate_connection()
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    fields = [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "x")]
    for stream_id in range(1, 2 * 50, 2):
        client.send_headers(stream_id, fields, end_stream=True)
        client.reset_stream(stream_id, CANCEL)
    engine.receive_data(client.data_to_send())
    closed = [e for e in engine.events() if isinstance(e, ConnectionClosed)]
    assert [e.error_code for e in closed] == [h2.errors.ErrorCodes.ENHANCE_YOUR_CALM]
