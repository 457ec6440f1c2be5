"""hello's HTTP/2: header blocks without a dynamic table, received headers checked as h2 does,
and responses on the wire: concurrent ones through any window, the end of one that
Hypercorn's sending task is still writing, and bodies queued only as fast as the client
takes them; and the idle timer that each request stops."""

from __future__ import annotations

import asyncio.constants
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import h2.connection
import h2.errors
import h2.events
import h2.settings
import h2.utilities
import httpx
import pytest
from hpack import Decoder, HeaderTuple, NeverIndexedHeaderTuple
from hypercorn.asyncio.task_group import TaskGroup

from hello.wire.h2_headers import UnindexedEncoder
from hello.wire.tcp import IdleTimer
from tests.conftest import Certs, clean_environ
from tests.h2client import H2Client, websocket_over_http2
from tests.support import HelloProcess

HEADERS = [
    HeaderTuple(b":status", b"200"),  # in the static table, name and value
    HeaderTuple(b"content-type", b"text/html; charset=utf-8"),  # the name only
    HeaderTuple(b"x-request-id", b"0123456789abcdef"),  # neither
    NeverIndexedHeaderTuple(b"authorization", b"secret"),
]


def test_header_blocks_decode_and_leave_the_decoders_table_empty() -> None:
    encoder, decoder = UnindexedEncoder(), Decoder()
    first, second = encoder.encode(HEADERS), encoder.encode(HEADERS)
    assert first[:1] == b"\x20" and second[:1] != b"\x20"  # table size 0, said once
    for block in (first, second):
        decoded = decoder.decode(block, raw=True)
        assert decoded == HEADERS
        assert [type(header) for header in decoded] == [type(header) for header in HEADERS]
    assert decoder.header_table_size == 0
    assert not decoder.header_table.dynamic_entries


def test_a_new_table_size_from_the_client_is_answered_with_size_zero_again() -> None:
    encoder = UnindexedEncoder()
    encoder.encode(HEADERS)
    encoder.header_table_size = 1024  # h2 sets this when the client's SETTINGS change it
    assert encoder.encode(HEADERS)[:1] == b"\x20"
    assert encoder.encode(HEADERS)[:1] != b"\x20"


def test_responses_over_http2_decode_and_h2_uses_no_dynamic_table(
    h2_server: HelloProcess, certs: Certs, http2_engine: str
) -> None:
    client = H2Client(h2_server, certs)
    responses: list[dict[bytes, bytes]] = []
    client.request(1, "/hello?name=Ada")
    for event in client.events():
        if isinstance(event, h2.events.ResponseReceived):
            responses.append(dict(event.headers))
            if len(responses) == 1:
                # The client's table size changes mid-connection; blocks still decode.
                client.conn.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: 512})
                client.request(3, "/hello?name=Grace")
        elif isinstance(event, h2.events.StreamEnded) and event.stream_id == 3:
            break
    client.sock.close()
    assert [r[b":status"] for r in responses] == [b"200", b"200"]
    assert all(r[b"content-type"] == b"text/html; charset=utf-8" for r in responses)
    assert responses[0][b"content-length"] != responses[1][b"content-length"]
    if http2_engine == "h2":  # h2's HPACK in Python costs less without it (h2_headers.py)
        assert client.conn.decoder.header_table_size == 0
        assert not client.conn.decoder.header_table.dynamic_entries


MOUNTED = Path(__file__).parent / "mounted"


@pytest.fixture(scope="module")
def server(
    certs: Certs, tmp_path_factory: pytest.TempPathFactory, http2_engine: str
) -> Iterator[HelloProcess]:
    files = tmp_path_factory.mktemp("files")
    (files / "big.bin").write_bytes(os.urandom(4 * 1024 * 1024 + 16000))
    flags = ["--bind", "127.0.0.1:0", *certs.flags(), "--static", f"/files={files}"]
    flags += ["--http2-engine", http2_engine]
    flags += ["--pythonpath", str(MOUNTED), "--mount", "/s=streams:app"]
    process = HelloProcess(flags, env=clean_environ())
    try:
        yield process
    finally:
        process.kill()


@pytest.mark.parametrize("window", [16 * 1024 * 1024, 65535, 1000])
def test_concurrent_responses_arrive_whole_through_any_window(
    server: HelloProcess, certs: Certs, window: int
) -> None:
    """Small bodies go out at once and large ones as the client's flow-control window
    allows, and as fast as a client with small socket buffers takes them (the server waits
    for it); on one connection, whole and each in order."""
    with httpx.Client(verify=certs.client_context()) as plain:
        expected = {
            path: plain.get(server.url + path).content for path in ("/hello", "/files/big.bin")
        }
    expected["/s/x/stream"] = b"one,two,three"
    client = H2Client(server, certs, receive_buffer=4096)
    client.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
    if window > 65535:
        client.conn.increment_flow_control_window(window - 65535)
    paths = {1: "/files/big.bin", 3: "/hello", 5: "/s/x/stream", 7: "/hello", 9: "/files/big.bin"}
    for stream_id, path in paths.items():
        client.request(stream_id, path)
    statuses, bodies = client.read_all(paths)
    client.sock.close()
    assert statuses == dict.fromkeys(paths, b"200")
    for stream_id, path in paths.items():
        assert bodies[stream_id] == expected[path], path


def test_a_response_is_queued_only_as_fast_as_the_client_takes_it(
    server: HelloProcess, certs: Certs
) -> None:
    """An app's send returns only when (nearly) all of it has gone: a client that grants no
    window cannot make the app go on and queue more response bodies. Here the client grants
    256 KiB at a time and, each time it has that much, asks whether the app has got past its
    8 MiB send."""
    size, step = 8 * 1024 * 1024, 256 * 1024
    client = H2Client(server, certs)
    next(e for e in client.events() if isinstance(e, h2.events.SettingsAcknowledged))
    client.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    client.conn.increment_flow_control_window(2 * size)  # the connection's: no limit here
    client.request(1, f"/s/send/window?size={size}&chunk={size}")
    received, granted = 0, 0
    states: list[tuple[int, str]] = []
    with httpx.Client(verify=certs.client_context(), timeout=10) as plain:
        events = client.events()
        while True:
            states.append((received, plain.get(f"{server.url}/s/state/window").text))
            if received == size:
                break
            granted += step
            client.conn.increment_flow_control_window(step, stream_id=1)
            client.flush()
            while received < granted:
                event = next(events)
                if isinstance(event, h2.events.DataReceived):
                    received += len(event.data)
    client.sock.close()
    # The app gets past its send once the engine has framed all of it, which the windows
    # allow only as the client grants them: at the client's last grant at the earliest.
    assert states[-1] == (size, "ending")
    first = next(at for at, state in states if state == "ending")
    assert first >= size - step, states


def test_the_idle_timer_is_restarted_and_stopped_without_waiting_on_the_loop() -> None:
    """Each request of an HTTP/2 batch stops the idle timer, and a connection going idle
    restarts it: neither may wait for a turn of the loop (see wire.tcp.IdleTimer). The timers
    cancelled on the way never act."""
    acted: list[int] = []
    turns: list[int] = []

    async def scenario() -> None:
        go = asyncio.Event()

        async def action() -> None:
            await go.wait()
            acted.append(1)

        loop = asyncio.get_running_loop()
        async with TaskGroup(loop) as task_group:
            timer = IdleTimer()
            await timer.restart(task_group, action)
            loop.call_soon(turns.append, 1)  # runs at the loop's next turn
            await timer.restart(task_group, action)
            await timer.stop()
            await timer.restart(task_group, action)
            await timer.stop()
            assert turns == []
            go.set()  # a timer left running would act now, before the group ends

    asyncio.run(scenario())
    assert turns == [1]
    assert acted == []


def test_a_websocket_over_http2_reaches_a_mounted_app(server: HelloProcess, certs: Certs) -> None:
    """RFC 8441: an extended CONNECT stream carries the WebSocket to the app at /s."""
    assert websocket_over_http2(server, certs, "/s/ws", ["hi"]) == ["echo: hi"]


def test_a_connection_retired_after_1000_requests_loses_none(
    server: HelloProcess, certs: Certs
) -> None:
    """After 1,000 requests a connection is retired with GOAWAY, sent once nothing is in
    flight: httpx fails a request in flight when GOAWAY comes, and retries on a new
    connection one it had not sent."""
    with httpx.Client(http2=True, verify=certs.client_context()) as client:
        statuses = [client.get(f"{server.url}/s/x/stream").status_code for _ in range(1100)]
    assert statuses == [200] * 1100


def test_a_connection_retired_with_requests_in_flight_answers_each_it_took(
    server: HelloProcess, certs: Certs
) -> None:
    """Eight requests in flight, a new one sent as each ends: the connection is retired
    by a GOAWAY naming the last stream taken. Each
    stream up to that one is answered 200 and ended; each after it is refused or left
    unanswered, for the client to send again elsewhere."""
    client = H2Client(server, certs)
    client.take_frames_after_goaway()
    statuses: dict[int, bytes] = {}
    ended: set[int] = set()
    refused: set[int] = set()
    last: int | None = None  # the GOAWAY's last stream

    def send() -> None:
        client.request(client.conn.get_next_available_stream_id(), "/s/x/stream", flush=False)

    for _ in range(8):
        send()
    client.flush()
    for event in client.events():
        if isinstance(event, h2.events.ResponseReceived):
            statuses[event.stream_id] = dict(event.headers)[b":status"]
        elif isinstance(event, h2.events.DataReceived):
            client.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            ended.add(event.stream_id)
            if client.conn.state_machine.state != h2.connection.ConnectionState.CLOSED:
                send()  # not after a GOAWAY, even one later in this read
        elif isinstance(event, h2.events.StreamReset):
            assert event.error_code == h2.errors.ErrorCodes.REFUSED_STREAM, event
            refused.add(event.stream_id)
        elif isinstance(event, h2.events.ConnectionTerminated):
            assert event.error_code == h2.errors.ErrorCodes.NO_ERROR, event
            last = event.last_stream_id if last is None else last
        client.flush()
        if last is not None and all(s in ended for s in range(1, last + 1, 2)):
            break
    client.sock.close()
    assert last is not None, "no GOAWAY"
    taken = set(range(1, last + 1, 2))
    # Retired once nothing is in flight past 1,000 requests (between two reads, all eight
    # may be answered), or at RETIRE_BY (2) times that all the same.
    assert 1000 <= len(taken) <= 2000
    assert ended >= taken and {statuses[s] for s in taken} == {b"200"}
    assert not refused & taken and not (ended - taken)


def test_response_trailers_reach_a_client_that_takes_them(
    server: HelloProcess, certs: Certs
) -> None:
    """An app's http.response.trailers go out as a HEADERS frame ending the stream, to a
    client that sent TE: trailers; another gets the body alone, ended."""
    client = H2Client(server, certs)
    client.request(1, "/s/trailers/a", ("te", "trailers"))
    client.request(3, "/s/trailers/b")
    trailers: dict[int, dict[bytes, bytes]] = {}
    ended: set[int] = set()
    bodies = {1: b"", 3: b""}
    for event in client.events():
        if isinstance(event, h2.events.TrailersReceived):
            trailers[event.stream_id] = dict(event.headers)
        elif isinstance(event, h2.events.DataReceived):
            bodies[event.stream_id] += event.data
            client.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        if isinstance(event, h2.events.StreamEnded):
            ended.add(event.stream_id)
            if ended == {1, 3}:
                break
    client.sock.close()
    assert trailers == {1: {b"x-checksum": b"abc123"}}
    assert bodies == {1: b"body", 3: b"body"}


def test_after_goaway_a_request_the_client_sent_in_the_meantime_is_left_for_a_retry(
    certs: Certs,
) -> None:
    """A stopping server's GOAWAY names the last stream it took; the connection stays open a
    moment after it, so a request the client sent before the GOAWAY reached it is neither
    answered nor cut off mid-write: the client reads the GOAWAY and sends it elsewhere."""
    server = HelloProcess(["--bind", "127.0.0.1:0", *certs.flags()], env=clean_environ())
    try:
        client = H2Client(server, certs)
        client.request(1, "/hello")
        statuses, _ = client.read_all([1])
        assert statuses == {1: b"200"}
        server.signal(signal.SIGTERM)
        goaway = next(e for e in client.events() if isinstance(e, h2.events.ConnectionTerminated))
        assert (goaway.error_code, goaway.last_stream_id) == (0, 1)
        sent = time.monotonic()
        client.sock.sendall(  # as if it had crossed the GOAWAY: h2 itself refuses it now
            b"\x00\x00\x00\x01\x05\x00\x00\x00\x03"  # HEADERS, END_STREAM|END_HEADERS, stream 3
        )
        after = list(client.events())  # until the server closes the connection
        closed = time.monotonic() - sent
        client.sock.close()
        assert not any(getattr(e, "stream_id", 0) == 3 for e in after), after
        assert closed >= 0.4  # not closed under the client's feet (DRAIN_IDLE: 1 s)
        assert server.wait(timeout=10) == 0
        assert "closing an HTTP/2 connection" not in server.stderr
    finally:
        server.kill()


def test_a_clients_goaway_ends_the_connection_at_once(certs: Certs) -> None:
    """The client's GOAWAY is not hello's: no lingering, the connection closes (or answers the
    PING that follows), as h2spec 3.8/1 asks."""
    server = HelloProcess(["--bind", "127.0.0.1:0", *certs.flags()], env=clean_environ())
    try:
        client = H2Client(server, certs)
        goaway = b"\x00\x00\x08\x07\x00\x00\x00\x00\x00" + bytes(8)  # last stream 0, NO_ERROR
        ping = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"h2spec  "
        client.sock.sendall(goaway + ping)
        started = time.monotonic()
        while client.sock.recv(65536):  # until the server closes the connection
            pass
        assert time.monotonic() - started < 0.5  # at once, not DRAIN_IDLE later
        client.sock.close()
        assert server.stop() == 0
    finally:
        server.kill()


def test_path_send_reads_the_file_as_the_window_opens(
    certs: Certs, tmp_path: Path, http2_engine: str
) -> None:
    """A static file and Starlette's FileResponse (ASGI path send, which both engines offer) over a
    connection whose streams get no window: the heads come, then as many body bytes as each
    window granted, and the whole file once the windows open; the access log counts it all."""
    big = os.urandom(3 * 1024 * 1024 + 5)
    (tmp_path / "big.bin").write_bytes(big)
    source = (MOUNTED / "starlette_site.py").read_bytes()
    flags = ["--bind", "127.0.0.1:0", *certs.flags(), "--http2-engine", http2_engine]
    flags += ["--static", f"/files={tmp_path}", "--access-log", "-"]
    flags += ["--pythonpath", str(MOUNTED), "--mount", "/star=starlette_site:app"]
    server = HelloProcess(flags, env=clean_environ())
    try:
        client = H2Client(server, certs)
        client.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
        client.conn.increment_flow_control_window(64 * 1024 * 1024)  # the connection's
        paths = {1: "/files/big.bin", 3: "/star/source"}
        for stream_id, path in paths.items():
            client.request(stream_id, path)
        heads: dict[int, dict[bytes, bytes]] = {}
        bodies = {stream_id: bytearray() for stream_id in paths}
        granted = 0
        for event in client.events():
            if isinstance(event, h2.events.ResponseReceived):
                heads[event.stream_id] = dict(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                bodies[event.stream_id] += event.data  # h2 refuses data past a window
            if len(heads) == len(paths) and not granted:  # no window yet, so no data
                assert bodies == {1: b"", 3: b""}
                granted = 1000
                for stream_id in paths:
                    client.conn.increment_flow_control_window(granted, stream_id=stream_id)
                client.flush()
            if granted and all(len(body) == granted for body in bodies.values()):
                break
        assert heads[1][b"content-length"] == str(len(big)).encode()
        assert heads[3][b"content-type"].startswith(b"text/plain")
        for stream_id, body in bodies.items():
            expected = big if stream_id == 1 else source
            assert body == expected[:granted]
            client.conn.increment_flow_control_window(len(expected), stream_id=stream_id)
        client.flush()
        _, rest = client.read_all(paths)
        client.sock.close()
        assert [heads[stream_id][b":status"] for stream_id in paths] == [b"200", b"200"]
        assert bodies[1] + rest[1] == big
        assert bodies[3] + rest[3] == source
        server.wait_for_output(f'"GET /files/big.bin HTTP/2" 200 {len(big)} ', stream="stdout")
        server.wait_for_output(f'"GET /star/source HTTP/2" 200 {len(source)} ', stream="stdout")
        with httpx.Client(http2=True, verify=certs.client_context()) as polite:
            head = polite.head(server.url + "/star/source")
            assert head.http_version == "HTTP/2" and head.status_code == 200
            assert head.content == b"" and head.headers["content-length"] == str(len(source))
            ranged = polite.get(server.url + "/files/big.bin", headers={"Range": "bytes=5-9"})
            assert ranged.status_code == 206 and ranged.content == big[5:10]
    finally:
        server.kill()
