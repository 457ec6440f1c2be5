"""Static files from a real server: over HTTP/2 with TLS, and raw requests that try to escape."""

from __future__ import annotations

import gzip
import os
import socket
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import Certs, clean_environ
from tests.support import HelloProcess

STATIC = files("hello") / "static"


BIG = os.urandom(3 * 1024 * 1024 + 17)  # streamed from disk in chunks
MEMORY = os.urandom(1024 * 1024)  # answered from memory, in one write


def make_site(tmp_path: Path) -> Path:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "notes.txt").write_text("notes\n" * 100)
    (tmp_path / "site" / "big.bin").write_bytes(BIG)
    (tmp_path / "site" / "memory.bin").write_bytes(MEMORY)
    (tmp_path / "secret.txt").write_text("secret")
    return tmp_path / "site"


@pytest.fixture
def server(certs: Certs, tmp_path: Path) -> Iterator[HelloProcess]:
    tls = certs.flags()
    static = ["--static", f"/files={make_site(tmp_path)}"]
    process = HelloProcess(["--bind", "127.0.0.1:0", *tls, *static], env=clean_environ())
    try:
        yield process
    finally:
        process.kill()


@pytest.fixture
def plain_static(tmp_path: Path) -> Iterator[HelloProcess]:
    static = ["--static", f"/files={make_site(tmp_path)}"]
    process = HelloProcess(["--bind", "127.0.0.1:0", *static], env=clean_environ())
    try:
        yield process
    finally:
        process.kill()


def test_static_over_http2(server: HelloProcess, certs: Certs) -> None:
    css = (STATIC / "style.css").read_bytes()
    with httpx.Client(http2=True, verify=certs.client_context()) as client:
        full = client.get(server.url + "/static/style.css", headers={"Accept-Encoding": "br"})
        assert full.http_version == "HTTP/2"
        assert full.headers["content-encoding"] == "br"
        assert full.content == css
        part = client.get(server.url + "/static/style.css", headers={"Range": "bytes=0-9"})
        assert part.status_code == 206 and part.content == css[:10]
        cached = client.get(
            server.url + "/static/style.css",
            headers={"If-None-Match": full.headers["etag"], "Accept-Encoding": "br"},
        )
        assert cached.status_code == 304
        head = client.head(server.url + "/static/style.css")
        assert head.status_code == 200 and head.content == b""
        notes = client.get(server.url + "/files/notes.txt", headers={"Accept-Encoding": "gzip"})
        assert notes.text == "notes\n" * 100
    with httpx.Client(http2=True, verify=certs.client_context()) as client:
        with client.stream(
            "GET", server.url + "/static/index.html", headers={"Accept-Encoding": "gzip"}
        ) as response:
            raw = b"".join(response.iter_raw())
        assert response.headers["vary"] == "accept-encoding"
        assert gzip.decompress(raw) == (STATIC / "index.html").read_bytes()


def test_large_files_over_http2_and_tls(server: HelloProcess, certs: Certs) -> None:
    for http2 in (True, False):
        with httpx.Client(http2=http2, verify=certs.client_context()) as client:
            big = client.get(server.url + "/files/big.bin")
            assert big.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
            assert big.content == BIG
            part = client.get(server.url + "/files/big.bin", headers={"Range": "bytes=17-2000016"})
            assert part.status_code == 206 and part.content == BIG[17:2000017]
            assert client.get(server.url + "/files/memory.bin").content == MEMORY


@pytest.mark.parametrize("name", ["big.bin", "memory.bin"])
def test_a_slow_tls_reader_gets_every_byte(server: HelloProcess, certs: Certs, name: str) -> None:
    """A client with a tiny receive buffer, reading a little at a time: the server's writes
    wait on it again and again (pieces of a large write, chunks of a streamed file)."""
    port = urlsplit(server.url).port
    assert port is not None
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", port))
    context = certs.client_context()
    context.set_alpn_protocols(["http/1.1"])
    with context.wrap_socket(raw, server_hostname="localhost") as sock:
        sock.sendall(f"GET /files/{name} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        sock.settimeout(30)
        received = bytearray()
        expected = BIG if name == "big.bin" else MEMORY
        while (end := received.find(b"\r\n\r\n")) < 0 or len(received) < end + 4 + len(expected):
            piece = sock.recv(4096)
            assert piece, f"closed after {len(received)} bytes"
            received += piece
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert body == expected


@pytest.mark.parametrize(
    "target",
    [
        b"/static/../pyproject.toml",
        b"/static/%2e%2e/%2e%2e/pyproject.toml",
        b"/static/%252e%252e/app.py",
        b"/static/..%2f..%2fpyproject.toml",
        b"//etc/passwd",
        b"/static//etc/passwd",
        b"/files/../secret.txt",
        b"/files/%2e%2e/secret.txt",
        b"/files/..%5csecret.txt",
        b"/files/%00",
    ],
)
def test_escapes_over_the_wire_are_refused(plain_static: HelloProcess, target: bytes) -> None:
    parts = urlsplit(plain_static.url)
    assert parts.hostname is not None and parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    if target.startswith(b"/files/"):  # the mount is there: a plain file of it is served
        with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
            sock.sendall(b"GET /files/notes.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert sock.recv(12) == b"HTTP/1.1 200"
    if target.startswith(b"/files/"):  # the mount is there: a plain file is served
        with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
            sock.sendall(b"GET /files/notes.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert sock.recv(12) == b"HTTP/1.1 200"
    assert 400 <= status < 500, answer[:200]
    assert b"secret" not in answer and b"[project]" not in answer and b"root:" not in answer
