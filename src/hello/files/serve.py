"""Serving static files over ASGI the way a front-end server does, below the Quart app.

GET and HEAD; strong content-hash ETags and Last-Modified, with 304 for If-None-Match and
If-Modified-Since; one byte range per request (206, 416 with ``Content-Range: bytes */N``,
If-Range honoured; a request for several ranges gets the whole file, 200); precompressed
``br`` and ``gzip`` forms chosen by Accept-Encoding (``q=0`` respected) with
``Vary: Accept-Encoding`` and each form's own ETag; files small enough answered from memory,
larger ones streamed in chunks as the client takes them.
"""

from __future__ import annotations

import os
from email.utils import parsedate_to_datetime
from typing import Protocol

from hello.asgi_types import ASGIApp, Receive, Scope, Send
from hello.files.reading import read_at
from hello.files.sources import MULTIPLEXED_CHUNK, STREAM_CHUNK, Redirect, Resource, Variant
from hello.responses import send_text


class Source(Protocol):
    async def lookup(self, name: str) -> Resource | Redirect | None: ...


class StaticFiles:
    """An ASGI app serving ``source``; the file's name is the path below the mount prefix."""

    def __init__(self, source: Source) -> None:
        self.source = source

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        name = path[len(scope.get("root_path", "")) :].lstrip("/")
        await self.serve(scope, send, name)

    async def serve(self, scope: Scope, send: Send, name: str) -> None:
        method: str = scope["method"]
        if method not in ("GET", "HEAD"):
            await send_text(send, 405, "Method Not Allowed", [(b"allow", b"GET, HEAD")])
            return
        found = await self.source.lookup(name)
        head = method == "HEAD"
        if found is None:
            await send_text(send, 404, "Not Found", head=head)
        elif isinstance(found, Redirect):
            query: bytes = scope.get("query_string", b"")
            location = found.location + ("?" + query.decode("latin-1") if query else "")
            await send_text(send, 308, "Permanent Redirect", [(b"location", location.encode())])
        else:
            # A multiplexed connection streams files side by side, each holding a chunk.
            one_at_a_time = scope.get("http_version") in ("1.0", "1.1")
            plain = scope.get("scheme") == "http"
            chunk = STREAM_CHUNK if one_at_a_time and plain else MULTIPLEXED_CHUNK
            pathsend = "http.response.pathsend" in (scope.get("extensions") or {})
            await _respond(found, _headers(scope), send, head, chunk, pathsend)


class IndexPage:
    """``/`` is ``index`` from ``files``; every other path goes on to ``app``."""

    def __init__(self, files: StaticFiles, index: str, app: ASGIApp) -> None:
        self.files = files
        self.index = index
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/":
            await self.files.serve(scope, send, self.index)
        else:
            await self.app(scope, receive, send)


def _headers(scope: Scope) -> dict[bytes, str]:
    wanted = (b"if-none-match", b"if-modified-since", b"range", b"if-range", b"accept-encoding")
    found: dict[bytes, str] = {}
    for key, value in scope["headers"]:
        if key in wanted:
            text = bytes(value).decode("latin-1")
            found[key] = f"{found[key]}, {text}" if key in found else text
    return found


async def _respond(
    resource: Resource,
    request: dict[bytes, str],
    send: Send,
    head: bool,
    chunk: int,
    pathsend: bool,
) -> None:
    ranged = request.get(b"range") if not head else None
    variant = resource.identity if ranged else choose(resource, request.get(b"accept-encoding"))
    if _not_modified(resource, variant, request):
        headers = [*resource.headers, (b"etag", variant.etag.encode())]
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    start, end = 0, variant.size
    status = 200
    headers = [*resource.headers, (b"etag", variant.etag.encode())]
    if variant.encoding:
        headers.append((b"content-encoding", variant.encoding.encode()))
    if ranged and _if_range_holds(resource, request.get(b"if-range")):
        try:
            span = parse_range(ranged, variant.size)
        except UnsatisfiableRangeError:
            headers = [*resource.headers, (b"content-range", f"bytes */{variant.size}".encode())]
            await send_text(send, 416, "Range Not Satisfiable", headers)
            return
        if span is not None:
            start, end = span
            status = 206
            headers.append((b"content-range", f"bytes {start}-{end - 1}/{variant.size}".encode()))
    headers.append((b"content-length", str(end - start).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if head:
        await send({"type": "http.response.body", "body": b""})
    elif variant.body is not None:
        await send({"type": "http.response.body", "body": variant.body[start:end]})
    elif pathsend and status == 200:
        # The server reads the file as the client takes it (HTTP/2: as its window opens).
        assert variant.path is not None
        await send({"type": "http.response.pathsend", "path": str(variant.path)})
    else:
        await _stream(variant, start, end, send, chunk)


async def _stream(variant: Variant, start: int, end: int, send: Send, size: int) -> None:
    """Send bytes ``start``..``end`` of the file, ``size`` bytes at a time; ``send`` waits
    for the client, so a slow reader holds one chunk, never the file."""
    assert variant.path is not None
    fd = os.open(variant.path, os.O_RDONLY)
    try:
        offset = start
        while offset < end:
            chunk = await read_at(fd, offset, min(size, end - offset))
            if not chunk:  # the file shrank under us; the length already sent cannot be kept
                raise OSError(f"{variant.path} shrank while it was being sent")
            offset += len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": offset < end})
    finally:
        os.close(fd)


def choose(resource: Resource, accept_encoding: str | None) -> Variant:
    """The representation the client prefers among those there are; identity by default."""
    if not resource.encoded or not accept_encoding:
        return resource.identity
    weights = parse_accept_encoding(accept_encoding)
    star = weights.get("*", 0.0)
    best, best_weight = resource.identity, 0.0
    for variant in resource.encoded:
        assert variant.encoding is not None
        weight = weights.get(variant.encoding, star)
        if weight > best_weight:
            best, best_weight = variant, weight
    # identity is preferred only when the client ranks it above the encodings it names.
    if best is not resource.identity and weights.get("identity", 0.0) > best_weight:
        return resource.identity
    return best


def parse_accept_encoding(header: str) -> dict[str, float]:
    weights: dict[str, float] = {}
    for item in header.split(","):
        coding, _, params = item.strip().partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.lower() == "q":
                try:
                    weight = max(0.0, min(1.0, float(value)))
                except ValueError:
                    weight = 0.0
        weights[coding] = weight
    if "x-gzip" in weights and "gzip" not in weights:
        weights["gzip"] = weights["x-gzip"]
    return weights


def _not_modified(resource: Resource, variant: Variant, request: dict[bytes, str]) -> bool:
    if_none_match = request.get(b"if-none-match")
    if if_none_match is not None:
        if if_none_match.strip() == "*":
            return True
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return variant.etag in tags
    since = request.get(b"if-modified-since")
    if since is None or resource.last_modified is None:
        return False
    try:
        return resource.last_modified <= parsedate_to_datetime(since).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return False


def _if_range_holds(resource: Resource, if_range: str | None) -> bool:
    """RFC 9110 13.1.5: a strong ETag match or the exact Last-Modified date, else whole file."""
    if if_range is None:
        return True
    if_range = if_range.strip()
    if if_range.startswith('"'):
        return if_range == resource.identity.etag
    if if_range.startswith("W/") or resource.last_modified is None:
        return False
    try:
        return parsedate_to_datetime(if_range).timestamp() == resource.last_modified
    except (TypeError, ValueError, IndexError, OverflowError):
        return False


class UnsatisfiableRangeError(Exception):
    """The range starts past the end of the file (416)."""


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``(start, end)`` (end exclusive) of a single satisfiable range, or None to send the
    whole file (not bytes, malformed, or several ranges); UnsatisfiableRangeError for 416."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if first == "":  # the last N bytes
            suffix = int(last)
            if suffix <= 0:
                raise UnsatisfiableRangeError(header)
            return max(0, size - suffix), size
        start = int(first)
        end = int(last) + 1 if last else size
    except ValueError:
        return None
    if start < 0 or end <= start and last:
        return None
    if start >= size:
        raise UnsatisfiableRangeError(header)
    return start, min(end, size)
