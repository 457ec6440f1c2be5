"""Static files from a real server: over HTTP/2 with TLS, and raw requests that try to escape."""

from __future__ import annotations

import gzip
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


def make_site(tmp_path: Path) -> Path:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "notes.txt").write_text("notes\n" * 100)
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
