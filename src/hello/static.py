"""Serving the bundled site from memory, below the Quart app.

The files under the package's ``static`` directory are read once, through importlib.resources
(so they load from a wheel, a zipapp or a zip alike), into ready responses. Their ETags are
content hashes, the same in every process, extraction and replica. A URL can only name a file
that was loaded, so no path can climb out of the static root.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

from hello.asgi_types import ASGIApp, Receive, Scope, Send
from hello.responses import send_response, send_text

# Fixed here rather than left to the host's mime.types, so every machine answers the same.
_TYPES = {
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".png": "image/png",
    ".webp": "image/webp",
    ".txt": "text/plain",
    ".xml": "application/xml",
    ".woff2": "font/woff2",
}
_TEXT_TYPES = {"application/json", "application/xml", "image/svg+xml"}


@dataclass(frozen=True)
class StaticFile:
    """One file as a ready response: its body and the headers that go with it."""

    body: bytes
    content_type: str
    etag: str
    cache_control: str

    @classmethod
    def from_bytes(cls, name: str, body: bytes) -> StaticFile:
        content_type = content_type_for(name)
        digest = hashlib.sha256(body).hexdigest()[:32]
        html = content_type.startswith("text/html")
        cache_control = "no-cache" if html else "public, max-age=3600"
        return cls(body, content_type, f'"{digest}"', cache_control)

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"content-type", self.content_type.encode()),
            (b"etag", self.etag.encode()),
            (b"cache-control", self.cache_control.encode()),
            (b"x-content-type-options", b"nosniff"),
        ]


def content_type_for(name: str) -> str:
    suffix = name[name.rfind(".") :].lower() if "." in name else ""
    content_type = _TYPES.get(suffix) or mimetypes.guess_type(name)[0]
    if content_type is None:
        return "application/octet-stream"
    if content_type.startswith("text/") or content_type in _TEXT_TYPES:
        return content_type + "; charset=utf-8"
    return content_type


def load_bundled(package: str = "hello", directory: str = "static") -> dict[str, StaticFile]:
    """Every file under ``package``'s ``directory``, keyed by its path relative to it."""
    root = files(package).joinpath(directory)
    return {name: StaticFile.from_bytes(name, item.read_bytes()) for name, item in _walk(root, "")}


def _walk(folder: Traversable, prefix: str) -> Iterator[tuple[str, Traversable]]:
    for item in sorted(folder.iterdir(), key=lambda entry: entry.name):
        if item.name.startswith((".", "__")):
            continue  # dotfiles and __pycache__ are never part of the site
        if item.is_dir():
            yield from _walk(item, f"{prefix}{item.name}/")
        else:
            yield f"{prefix}{item.name}", item


def _etag_matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    candidates = (tag.strip().removeprefix("W/") for tag in header.split(","))
    return etag in candidates


class StaticSite:
    """ASGI layer: ``/`` is the index page, ``/static/<path>`` a bundled file; else ``app``."""

    def __init__(
        self,
        app: ASGIApp,
        site: Mapping[str, StaticFile],
        *,
        prefix: str = "/static/",
        index: str = "index.html",
    ) -> None:
        self.app = app
        self.site = dict(site)
        self.prefix = prefix
        self.index = index

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path == "/":
            name = self.index
        elif path.startswith(self.prefix):
            name = path[len(self.prefix) :]
        else:
            await self.app(scope, receive, send)
            return
        await self._serve(scope, send, name)

    async def _serve(self, scope: Scope, send: Send, name: str) -> None:
        method: str = scope["method"]
        head = method == "HEAD"
        if method not in ("GET", "HEAD"):
            await send_text(send, 405, "Method Not Allowed", [(b"allow", b"GET, HEAD")])
            return
        file = self.site.get(name)
        if file is None:
            await send_text(send, 404, "Not Found", head=head)
            return
        if_none_match = _header(scope, b"if-none-match")
        if if_none_match is not None and _etag_matches(if_none_match, file.etag):
            await send_response(send, 304, b"", file.headers()[1:], head=True)
            return
        await send_response(send, 200, file.body, file.headers(), head=head)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None
