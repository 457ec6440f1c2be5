"""A bare WSGI app for the bridge tests: PEP 3333's corners, one path each.

Every iterable it returns reports its close() by writing a file named after the path into
$WSGI_CASES_DIR, so a test can see that the server closed it."""

import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

Environ = dict[str, Any]


class Reported:
    """An iterable whose close() leaves a file named ``name`` behind."""

    def __init__(self, name: str, parts: Iterator[bytes]) -> None:
        self.name = name
        self.parts = parts

    def __iter__(self) -> Iterator[bytes]:
        return self.parts

    def close(self) -> None:
        (Path(os.environ["WSGI_CASES_DIR"]) / self.name).write_text("closed")


def _stream() -> Iterator[bytes]:
    yield b"one,"
    yield b""  # empty chunks are allowed, and not the end
    yield b"two,"
    yield b"three"


def _big() -> Iterator[bytes]:
    for n in range(64):
        yield bytes([n]) * 65536  # 4 MiB, far past what the loop buffers


def _forever(stop: threading.Event) -> Iterator[bytes]:
    while not stop.wait(0.01):  # a slow stream: a chunk every 10 ms, until closed
        yield b"tick\n"


def _late_error(start_response: Any) -> Iterator[bytes]:
    try:
        raise ValueError("the template broke")
    except ValueError:
        headers = [("Content-Type", "text/plain")]
        start_response("500 Internal Server Error", headers, sys.exc_info())
    yield b"failed politely"


def app(environ: Environ, start_response: Any) -> Any:
    path = environ["PATH_INFO"]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Reported("stream", _stream())
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written, ")
        return [b"then returned"]
    if path == "/big":
        start_response("200 OK", [("Content-Length", str(64 * 65536))])
        return Reported("big", _big())
    if path == "/forever":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Reported("forever", _forever(threading.Event()))
    if path == "/late-error":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _late_error(start_response)
    if path == "/raises":
        raise RuntimeError("the legacy app fell over")
    if path == "/no-start":
        return [b"a body without a status"]
    if path == "/empty":
        start_response("204 No Content", [])
        return Reported("empty", iter(()))
    if path == "/input":
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        seen = (environ["CONTENT_LENGTH"], len(body), environ["wsgi.input_terminated"])
        return [" ".join(map(str, seen)).encode()]
    start_response("404 Not Found", [])
    return [b"no such case"]
