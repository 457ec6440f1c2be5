"""Where static files come from: the bundled site, or a directory on disk.

Both give ``Resource`` objects: a file's content type, cache policy, validators and its
representations (identity, and precompressed ``br`` and ``gzip`` when they exist). ETags are
content hashes, so every process, installation and replica agrees on them. A name is checked
segment by segment before it touches the file system: no ``..``, no ``.``, no empty segments, no
backslashes or NUL bytes, no dotfiles (unless asked), and what it resolves to must stay inside
the root (unless symlinks out of it are allowed).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import mimetypes
import os
import re
import stat
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

# Fixed here rather than left to the host's mime.types, so every machine answers the same.
_TYPES = {
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".txt": "text/plain",
    ".xml": "application/xml",
    ".wasm": "application/wasm",
    ".woff2": "font/woff2",
}
_TEXT_TYPES = {"application/json", "application/xml", "image/svg+xml"}
ENCODINGS = (("br", ".br"), ("gzip", ".gz"))  # in order of preference
FINGERPRINTED = re.compile(r"\.[0-9a-f]{8,64}\.[A-Za-z0-9]+$")
IMMUTABLE = "public, max-age=31536000, immutable"
MEMORY_LIMIT = 1024 * 1024  # files up to this size are answered from memory
CACHE_BUDGET = 64 * 1024 * 1024  # bytes of file bodies one directory keeps in memory
# Bytes of a file read at a time for HTTP/1.1 without TLS: large enough for bulk throughput,
# small enough that a client reading nothing holds little (docs/performance.md).
STREAM_CHUNK = 64 * 1024
# For HTTP/2 and HTTP/3, where up to 100 streams of a connection each hold a chunk while the
# client grants no window, and for HTTP/1.1 over TLS, where a client that does not read holds
# one: 16 KiB, one DATA frame or TLS record. Read from the page cache in the event loop
# (files/reading.py), they cost no throughput (docs/performance.md).
MULTIPLEXED_CHUNK = 16 * 1024


@dataclass(frozen=True)
class Variant:
    """One representation of a file: in memory (``body``) or read from ``path`` as it is sent."""

    encoding: str | None
    size: int
    etag: str
    body: bytes | None = None
    path: Path | None = None


@dataclass(frozen=True)
class Resource:
    content_type: str
    cache_control: str
    last_modified: int | None
    identity: Variant
    encoded: tuple[Variant, ...] = ()
    headers: tuple[tuple[bytes, bytes], ...] = field(default=(), compare=False)

    @classmethod
    def make(
        cls,
        name: str,
        identity: Variant,
        encoded: tuple[Variant, ...] = (),
        last_modified: int | None = None,
        cache_control: str | None = None,
    ) -> Resource:
        content_type = content_type_for(name)
        policy = cache_control or cache_policy(name, content_type)
        headers = [
            (b"content-type", content_type.encode()),
            (b"cache-control", policy.encode()),
            (b"accept-ranges", b"bytes"),
            (b"x-content-type-options", b"nosniff"),
        ]
        if last_modified is not None:
            headers.append((b"last-modified", http_date(last_modified).encode()))
        if encoded:
            headers.append((b"vary", b"accept-encoding"))
        return cls(content_type, policy, last_modified, identity, encoded, tuple(headers))


@dataclass(frozen=True)
class Redirect:
    """A directory named without its trailing slash: send the client to ``location``."""

    location: str


def content_type_for(name: str) -> str:
    suffix = name[name.rfind(".") :].lower() if "." in name else ""
    content_type = _TYPES.get(suffix) or mimetypes.guess_type(name)[0]
    if content_type is None:
        return "application/octet-stream"
    if content_type.startswith("text/") or content_type in _TEXT_TYPES:
        return content_type + "; charset=utf-8"
    return content_type


def cache_policy(name: str, content_type: str) -> str:
    if FINGERPRINTED.search(name):
        return IMMUTABLE
    if content_type.startswith("text/html"):
        return "no-cache"
    return "public, max-age=3600"


def http_date(timestamp: float) -> str:
    return formatdate(timestamp, usegmt=True)


def strong_etag(digest: str, encoding: str | None = None) -> str:
    return f'"{digest}-{encoding}"' if encoding else f'"{digest}"'


def safe_segments(name: str, *, dotfiles: bool = False) -> list[str] | None:
    """The path segments of ``name`` if it may name a file under a root, else None."""
    if "\\" in name or "\x00" in name:
        return None
    segments = name.split("/")
    if segments[-1] == "":
        segments = segments[:-1]  # a trailing slash names a directory's index
    for segment in segments:
        if segment in ("", ".", ".."):
            return None
        if segment.startswith(".") and not dotfiles:
            return None
    return segments


# --- the bundled site ---


@dataclass(frozen=True)
class BundledSite:
    """The package's static/ directory in memory, with fingerprinted aliases of every file."""

    resources: Mapping[str, Resource]
    fingerprints: Mapping[str, str]  # "style.css" -> "style.3f2a9c1e.css"

    async def lookup(self, name: str) -> Resource | Redirect | None:
        return self.resources.get(name)

    def asset_path(self, name: str) -> str:
        """The fingerprinted name of a bundled file (its own name if it has no extension)."""
        return self.fingerprints[name]

    @classmethod
    def load(cls, package: str = "hello", directory: str = "static") -> BundledSite:
        root = files(package).joinpath(directory)
        blobs = {name: item.read_bytes() for name, item in _walk(root, "")}
        manifest = files(package).joinpath("static-manifest.json")
        last_modified = None
        if manifest.is_file():
            last_modified = int(json.loads(manifest.read_text())["last_modified"])
        resources: dict[str, Resource] = {}
        fingerprints: dict[str, str] = {}
        for name, body in blobs.items():
            if any(
                name.endswith(suffix) and name[: -len(suffix)] in blobs for _, suffix in ENCODINGS
            ):
                continue  # a precompressed form of another file, served only as its variant
            digest = hashlib.sha256(body).hexdigest()[:32]
            identity = Variant(None, len(body), strong_etag(digest), body=body)
            encoded = tuple(
                Variant(
                    coding,
                    len(blobs[name + suffix]),
                    strong_etag(digest, coding),
                    body=blobs[name + suffix],
                )
                for coding, suffix in ENCODINGS
                if name + suffix in blobs
            )
            resources[name] = Resource.make(name, identity, encoded, last_modified)
            alias = _fingerprinted(name, digest)
            fingerprints[name] = alias
            if alias != name:
                resources[alias] = Resource.make(name, identity, encoded, last_modified, IMMUTABLE)
        return cls(resources, fingerprints)


def _fingerprinted(name: str, digest: str) -> str:
    folder, _, base = name.rpartition("/")
    stem, dot, suffix = base.rpartition(".")
    if not dot or not stem:
        return name
    return f"{folder}/{stem}.{digest[:8]}.{suffix}" if folder else f"{stem}.{digest[:8]}.{suffix}"


def _walk(folder: Traversable, prefix: str) -> Iterator[tuple[str, Traversable]]:
    for item in sorted(folder.iterdir(), key=lambda entry: entry.name):
        if item.name.startswith((".", "__")):
            continue  # dotfiles and __pycache__ are never part of the site
        if item.is_dir():
            yield from _walk(item, f"{prefix}{item.name}/")
        else:
            yield f"{prefix}{item.name}", item


# --- a directory on disk ---


class DirectoryFiles:
    """Files under ``root``, checked on every request and cached while they do not change."""

    def __init__(
        self, root: Path, *, follow_symlinks: bool = False, dotfiles: bool = False
    ) -> None:
        self.root = Path(os.path.realpath(root))
        self.follow_symlinks = follow_symlinks
        self.dotfiles = dotfiles
        self._cache: OrderedDict[str, tuple[tuple[int, ...], Resource]] = OrderedDict()
        self._cached_bytes = 0

    async def lookup(self, name: str) -> Resource | Redirect | None:
        segments = safe_segments(name, dotfiles=self.dotfiles)
        if segments is None:
            return None
        path = self._inside(os.path.join(self.root, *segments))
        if path is None:
            return None
        info = _stat(path)
        if info is not None and stat.S_ISDIR(info.st_mode):
            index = self._inside(os.path.join(path, "index.html"))
            index_info = _stat(index) if index else None
            if index is None or index_info is None or not stat.S_ISREG(index_info.st_mode):
                return None  # no listings
            if name and not name.endswith("/"):
                return Redirect(name.rsplit("/", 1)[-1] + "/")
            path, info = index, index_info
        if info is None or not stat.S_ISREG(info.st_mode):
            return None
        return await self._resource(path, info)

    def _inside(self, candidate: str) -> str | None:
        resolved = os.path.realpath(candidate)
        if self.follow_symlinks or resolved == str(self.root):
            return resolved
        return resolved if resolved.startswith(str(self.root) + os.sep) else None

    async def _resource(self, path: str, info: os.stat_result) -> Resource:
        variants = [(coding, path + suffix, _stat(path + suffix)) for coding, suffix in ENCODINGS]
        fresh = [
            (coding, alt, alt_info)
            for coding, alt, alt_info in variants
            if alt_info is not None and alt_info.st_mtime_ns >= info.st_mtime_ns
        ]
        key = (
            info.st_ino,
            info.st_size,
            info.st_mtime_ns,
            *(alt_info.st_mtime_ns for _, _, alt_info in fresh),
        )
        cached = self._cache.get(path)
        if cached is not None and cached[0] == key:
            self._cache.move_to_end(path)
            return cached[1]
        resource = await asyncio.get_running_loop().run_in_executor(
            None, _load_resource, path, info, fresh
        )
        self._remember(path, key, resource)
        return resource

    def _remember(self, path: str, key: tuple[int, ...], resource: Resource) -> None:
        old = self._cache.pop(path, None)
        if old is not None:
            self._cached_bytes -= _memory(old[1])
        self._cache[path] = (key, resource)
        self._cached_bytes += _memory(resource)
        while self._cached_bytes > CACHE_BUDGET and len(self._cache) > 1:
            _, (_, evicted) = self._cache.popitem(last=False)
            self._cached_bytes -= _memory(evicted)


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (OSError, ValueError):
        return None


def _memory(resource: Resource) -> int:
    variants = (resource.identity, *resource.encoded)
    return sum(len(variant.body) for variant in variants if variant.body is not None)


def _load_resource(
    path: str, info: os.stat_result, encoded: list[tuple[str, str, os.stat_result]]
) -> Resource:
    """Read (small) or hash (large) the file and its fresh precompressed forms; in a thread."""
    digest, body = _digest(path, info.st_size)
    identity = Variant(None, info.st_size, strong_etag(digest), body, Path(path))
    variants = []
    for coding, alt, alt_info in encoded:
        alt_body = Path(alt).read_bytes() if alt_info.st_size <= MEMORY_LIMIT else None
        variants.append(
            Variant(coding, alt_info.st_size, strong_etag(digest, coding), alt_body, Path(alt))
        )
    return Resource.make(path, identity, tuple(variants), int(info.st_mtime))


def _digest(path: str, size: int) -> tuple[str, bytes | None]:
    with open(path, "rb") as file:
        if size <= MEMORY_LIMIT:
            body = file.read()
            return hashlib.sha256(body).hexdigest()[:32], body
        return hashlib.file_digest(file, "sha256").hexdigest()[:32], None
