"""The WSGI bridge in a real server: streamed and written bodies, errors before and after
the head, close() always called, and a vanished client stopping the app's iterable."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import clean_environ
from tests.support import HelloProcess

MOUNTED = Path(__file__).parent / "mounted"


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wsgi-cases")


@pytest.fixture(scope="module")
def server(reports: Path) -> Iterator[HelloProcess]:
    flags = ["--bind", "127.0.0.1:0", "--pythonpath", str(MOUNTED), "--mount", "/w=wsgi_cases:app"]
    process = HelloProcess(flags, env=clean_environ() | {"WSGI_CASES_DIR": str(reports)})
    try:
        yield process
    finally:
        process.kill()


@pytest.fixture
def client(server: HelloProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def wait_for_file(path: Path, client: httpx.Client) -> None:
    """Poll (by asking the server for its health, which also yields the loop) for ``path``."""
    for _ in range(500):
        if path.exists():
            return
        client.get("/healthz")
    raise AssertionError(f"{path.name} was never written")


def test_a_streamed_body_without_length_is_chunked_and_closed(
    client: httpx.Client, reports: Path
) -> None:
    response = client.get("/w/stream")
    assert response.status_code == 200
    assert response.text == "one,two,three"
    assert response.headers["transfer-encoding"] == "chunked"
    wait_for_file(reports / "stream", client)


def test_write_and_the_iterable_both_count(client: httpx.Client) -> None:
    response = client.get("/w/write")
    assert (response.status_code, response.text) == (200, "written, then returned")


def test_a_large_body_arrives_whole(client: httpx.Client, reports: Path) -> None:
    response = client.get("/w/big")
    assert response.content == b"".join(bytes([n]) * 65536 for n in range(64))
    wait_for_file(reports / "big", client)


def test_exc_info_before_the_head_replaces_it(client: httpx.Client) -> None:
    response = client.get("/w/late-error")
    assert (response.status_code, response.text) == (500, "failed politely")


@pytest.mark.parametrize("case", ["raises", "no-start"])
def test_a_failing_app_gets_500_and_is_logged(
    client: httpx.Client, server: HelloProcess, case: str
) -> None:
    response = client.get(f"/w/{case}")
    assert response.status_code == 500
    assert client.get("/w/write").status_code == 200  # the connection and the pool go on
    expected = {"raises": "the legacy app fell over", "no-start": "before calling start_response"}
    server.wait_for_output(expected[case])


def test_no_body_statuses(client: httpx.Client, reports: Path) -> None:
    response = client.get("/w/empty")
    assert (response.status_code, response.content) == (204, b"")
    wait_for_file(reports / "empty", client)


def test_the_input_is_whole_and_terminated(client: httpx.Client) -> None:
    response = client.post("/w/input", content=b"x" * 100_000)
    assert response.text == "100000 100000 True"


def test_a_vanished_client_stops_and_closes_the_stream(
    server: HelloProcess, client: httpx.Client, reports: Path
) -> None:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /w/forever HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while received.count(b"tick") < 3:  # it streams
            received += sock.recv(65536)
        assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    wait_for_file(reports / "forever", client)  # gone: the iterable was closed
