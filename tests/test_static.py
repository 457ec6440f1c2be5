"""Static files in-process: validators, ranges, precompression, cache policy, safety."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from email.utils import formatdate
from importlib.resources import files
from pathlib import Path
from typing import Any, TypeVar

import brotli
import httpx
import pytest

from hello.config import load
from hello.errors import ConfigError
from hello.files.reading import read_at
from hello.files.serve import parse_accept_encoding
from hello.ops.lifecycle import Lifecycle
from hello.stack.build import build_app
from tests.conftest import asgi_client
from tests.support import poll

pytestmark = pytest.mark.anyio

STATIC = files("hello") / "static"
BUNDLED = sorted(item.name for item in STATIC.iterdir() if not item.name.endswith((".br", ".gz")))
T = TypeVar("T")
LAST_MODIFIED = json.loads((files("hello") / "static-manifest.json").read_text())["last_modified"]


def body_of(name: str) -> bytes:
    return (STATIC / name).read_bytes()


def etag_of(data: bytes, coding: str | None = None) -> str:
    digest = hashlib.sha256(data).hexdigest()[:32]
    return f'"{digest}-{coding}"' if coding else f'"{digest}"'


@pytest.mark.parametrize("name", BUNDLED)
async def test_every_bundled_file(client: httpx.AsyncClient, name: str) -> None:
    response = await client.get(f"/static/{name}", headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.content == body_of(name)
    assert response.headers["etag"] == etag_of(body_of(name))  # content hash: same everywhere
    assert response.headers["last-modified"] == formatdate(LAST_MODIFIED, usegmt=True)
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["x-content-type-options"] == "nosniff"
    expected = "no-cache" if name.endswith(".html") else "public, max-age=3600"
    assert response.headers["cache-control"] == expected


async def test_cache_policy_and_fingerprinted_aliases(client: httpx.AsyncClient) -> None:
    page = await client.get("/hello?name=Ada")
    digest = hashlib.sha256(body_of("style.css")).hexdigest()[:8]
    assert f'href="/static/style.{digest}.css"' in page.text
    aliased = await client.get(f"/static/style.{digest}.css")
    assert aliased.content == body_of("style.css")
    assert aliased.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert aliased.headers["content-type"] == "text/css; charset=utf-8"
    assert (await client.get("/static/style.00000000.css")).status_code == 404


async def test_if_none_match_and_if_modified_since(client: httpx.AsyncClient) -> None:
    first = await client.get("/static/greeter.js")
    etag = first.headers["etag"]
    for headers in (
        {"If-None-Match": etag},
        {"If-None-Match": f'"nope", W/{etag}'},
        {"If-None-Match": "*"},
        {"If-Modified-Since": first.headers["last-modified"]},
    ):
        again = await client.get("/static/greeter.js", headers=headers)
        assert again.status_code == 304, headers
        assert again.content == b""
        assert "content-length" not in again.headers
        assert again.headers["etag"] == etag
    older = formatdate(LAST_MODIFIED - 1, usegmt=True)
    for headers in (
        {"If-None-Match": '"nope"'},
        {"If-Modified-Since": older},
        {"If-Modified-Since": "garbage"},
    ):
        assert (await client.get("/static/greeter.js", headers=headers)).status_code == 200


@pytest.mark.parametrize(
    ("header", "status", "part"),
    [
        ("bytes=0-9", 206, slice(0, 10)),
        ("bytes=5-", 206, slice(5, None)),
        ("bytes=-7", 206, slice(-7, None)),
        ("bytes=10-100000", 206, slice(10, None)),
        ("bytes=0-0,5-9", 200, slice(None)),  # several ranges: the whole file (documented)
        ("bytes=9-3", 200, slice(None)),  # malformed: ignored
        ("lines=1-2", 200, slice(None)),
    ],
)
async def test_ranges(client: httpx.AsyncClient, header: str, status: int, part: slice) -> None:
    data = body_of("greeter.js")
    response = await client.get(
        "/static/greeter.js", headers={"Range": header, "Accept-Encoding": "br"}
    )
    assert response.status_code == status
    assert response.content == data[part]
    assert "content-encoding" not in response.headers  # ranges are of the identity bytes
    if status == 206:
        start = part.start if part.start is None or part.start >= 0 else len(data) + part.start
        start = start or 0
        expected = f"bytes {start}-{start + len(data[part]) - 1}/{len(data)}"
        assert response.headers["content-range"] == expected


@pytest.mark.parametrize("header", ["bytes=100000-", "bytes=-0"])
async def test_unsatisfiable_range(client: httpx.AsyncClient, header: str) -> None:
    response = await client.get("/static/greeter.js", headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(body_of('greeter.js'))}"


async def test_if_range(client: httpx.AsyncClient) -> None:
    etag = etag_of(body_of("style.css"))
    date = formatdate(LAST_MODIFIED, usegmt=True)
    for if_range, status in (
        (etag, 206),
        ('"stale"', 200),
        (date, 206),
        (formatdate(LAST_MODIFIED + 60, usegmt=True), 200),
        (f"W/{etag}", 200),
    ):
        response = await client.get(
            "/static/style.css", headers={"Range": "bytes=0-9", "If-Range": if_range}
        )
        assert response.status_code == status, if_range


async def test_head(client: httpx.AsyncClient) -> None:
    response = await client.head("/static/style.css", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-encoding"] == "gzip"
    assert int(response.headers["content-length"]) == len((STATIC / "style.css.gz").read_bytes())


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        ("br", "br"),
        ("gzip, deflate, br", "br"),
        ("gzip", "gzip"),
        ("br;q=0, gzip", "gzip"),
        ("br;q=0.5, gzip;q=0.8", "gzip"),
        ("gzip;q=0", None),
        ("*", "br"),
        ("*;q=0, identity", None),
        ("deflate", None),
        ("", None),
    ],
)
async def test_precompressed_forms(
    client: httpx.AsyncClient, accept: str, coding: str | None
) -> None:
    data = body_of("index.html")
    response = await client.get("/static/index.html", headers={"Accept-Encoding": accept})
    assert response.headers["vary"] == "accept-encoding"
    assert response.headers.get("content-encoding") == coding
    assert response.headers["etag"] == etag_of(data, coding)
    raw = response.content if coding is None else await _raw(client, accept)
    decoded = {None: lambda b: b, "br": brotli.decompress, "gzip": gzip.decompress}[coding](raw)
    assert decoded == data


async def _raw(client: httpx.AsyncClient, accept: str) -> bytes:
    """The body as sent, before httpx would decode it."""
    async with client.stream(
        "GET", "/static/index.html", headers={"Accept-Encoding": accept}
    ) as response:
        return b"".join([chunk async for chunk in response.aiter_raw()])


async def test_images_are_never_recompressed(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/static/apple-touch-icon.png", headers={"Accept-Encoding": "br, gzip"}
    )
    assert response.headers["content-type"] == "image/png"
    assert "content-encoding" not in response.headers
    assert "vary" not in response.headers
    assert not (STATIC / "apple-touch-icon.png.gz").is_file()


def test_accept_encoding_parsing() -> None:
    assert parse_accept_encoding("gzip;q=0.5, BR, x-gzip;q=0.1, foo;q=bad") == {
        "gzip": 0.5,
        "br": 1.0,
        "x-gzip": 0.1,
        "foo": 0.0,
    }


@pytest.mark.parametrize(
    "path",
    [
        "/static/../pyproject.toml",
        "/static/..%2f..%2fpyproject.toml",
        "/static/%2e%2e/app.py",
        "/static/%252e%252e/app.py",
        "/static//etc/passwd",
        "/static/.hidden",
        "/static/a\\b",
        "/static/style.css%00.txt",
        "/static/static-manifest.json",
    ],
)
async def test_bundled_traversal_is_404(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 404


# --- user directories (--static PREFIX=DIR) ---


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "docs" / "empty").mkdir(parents=True)
    (root / "docs" / "index.html").write_text("<h1>docs</h1>")
    (root / "app.css").write_text("body { color: red }\n" * 50)
    (root / "app.css.gz").write_bytes(gzip.compress((root / "app.css").read_bytes(), mtime=0))
    (root / "app.0123abcd.js").write_text("console.log(1)")
    (root / ".env").write_text("SECRET=1")
    (root / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    (tmp_path / "outside.txt").write_text("outside")
    (root / "escape.txt").symlink_to(tmp_path / "outside.txt")
    (root / "inside.css").symlink_to(root / "app.css")
    return root


@pytest.fixture
async def dir_client(site_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(site_dir) as client:
        yield client


def _client(site_dir: Path, **flags: str) -> httpx.AsyncClient:
    config = load(flags={"static": [f"/files={site_dir}"], **flags})
    app = build_app(config, Lifecycle(started=True))
    return asgi_client(app)


async def test_directory_files_and_index(dir_client: httpx.AsyncClient, site_dir: Path) -> None:
    css = await dir_client.get("/files/app.css", headers={"Accept-Encoding": "identity"})
    assert css.content == (site_dir / "app.css").read_bytes()
    assert css.headers["etag"] == etag_of(css.content)
    assert css.headers["vary"] == "accept-encoding"
    assert (await dir_client.get("/files/docs/")).text == "<h1>docs</h1>"
    moved = await dir_client.get("/files/docs?x=1")
    assert moved.status_code == 308 and moved.headers["location"] == "docs/?x=1"
    assert (await dir_client.get("/files/docs/empty/")).status_code == 404  # no listings
    assert (await dir_client.get("/files/")).status_code == 404
    fingerprinted = await dir_client.get("/files/app.0123abcd.js")
    assert fingerprinted.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_directory_gzip_static(dir_client: httpx.AsyncClient, site_dir: Path) -> None:
    response = await dir_client.get("/files/app.css", headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.content == (site_dir / "app.css").read_bytes()  # httpx decoded it
    # A .gz older than its original is stale and ignored.
    original = site_dir / "app.css"
    original.write_text("body { color: blue }\n")
    later = (site_dir / "app.css.gz").stat().st_mtime + 10
    os.utime(original, (later, later))
    fresh = await dir_client.get("/files/app.css", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in fresh.headers
    assert fresh.text == "body { color: blue }\n"
    assert fresh.headers["etag"] == etag_of(fresh.content)  # the change was noticed


async def test_large_file_streams_with_ranges(
    dir_client: httpx.AsyncClient, site_dir: Path
) -> None:
    data = (site_dir / "big.bin").read_bytes()
    whole = await dir_client.get("/files/big.bin")
    assert whole.content == data
    assert whole.headers["etag"] == etag_of(data)
    assert whole.headers["content-type"] == "application/octet-stream"
    middle = await dir_client.get("/files/big.bin", headers={"Range": "bytes=1000000-2999999"})
    assert middle.status_code == 206
    assert middle.content == data[1000000:3000000]


@pytest.mark.parametrize(
    "path",
    [
        "/files/../site/app.css",
        "/files/..%2fsite%2fapp.css",
        "/files/%2e%2e/outside.txt",
        "/files/.env",
        "/files/escape.txt",
        "/files/docs/../../outside.txt",
        "/files/a\\..\\b",
        "/files/app.css%00",
        "/files//etc/passwd",
        "/files/%2fetc%2fpasswd",
    ],
)
async def test_directory_traversal_is_404(dir_client: httpx.AsyncClient, path: str) -> None:
    assert (await dir_client.get(path)).status_code == 404


async def test_symlinks_inside_the_root_are_fine(dir_client: httpx.AsyncClient) -> None:
    assert (await dir_client.get("/files/inside.css")).status_code == 200


async def test_opt_ins_for_dotfiles_and_symlinks_out(site_dir: Path) -> None:
    async with _client(site_dir, static_dotfiles="true", static_follow_symlinks="true") as client:
        assert (await client.get("/files/.env")).text == "SECRET=1"
        assert (await client.get("/files/escape.txt")).text == "outside"


def test_static_flag_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a directory"):
        load(flags={"static": [f"/x={tmp_path / 'missing'}"]})
    with pytest.raises(ConfigError, match="expected PREFIX=DIR"):
        load(flags={"static": [str(tmp_path)]})
    with pytest.raises(ConfigError, match="must start with /"):
        load(flags={"static": [f"x/={tmp_path}"]})
    with pytest.raises(ConfigError, match="no trailing slash"):
        load(flags={"static": [f"/x/={tmp_path}"]})
    with pytest.raises(ConfigError, match="given twice"):
        load(flags={"static": [f"/x={tmp_path}", f"/x={tmp_path}"]})
    with pytest.raises(ConfigError, match="already served by hello itself"):
        build_app(load(flags={"static": [f"/legacy={tmp_path}"]}))


@pytest.mark.skipif(not hasattr(os, "RWF_NOWAIT"), reason="Linux's preadv2 flag")
async def test_read_at_from_the_page_cache_and_from_a_thread(tmp_path: Path) -> None:
    """A cached file is read in the event loop; one the page cache does not hold goes to a
    thread (the in-loop read would block), and both give the same bytes."""
    data = os.urandom(8 * 1024 * 1024)
    path = tmp_path / "file.bin"
    path.write_bytes(data)
    calls = 0

    class Counting(ThreadPoolExecutor):
        def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
            nonlocal calls
            calls += 1
            return super().submit(fn, *args, **kwargs)

    asyncio.get_running_loop().set_default_executor(Counting(1))
    fd = os.open(path, os.O_RDONLY)
    try:
        assert await read_at(fd, 1000, 16384) == data[1000:17384]
        assert await read_at(fd, len(data) - 10, 16384) == data[-10:]  # the end: fewer
        assert calls == 0
        os.fsync(fd)

        def evicted() -> bool:
            """Out of the page cache? It may take more than one request. The probe is far from
            the read below: a read that misses starts the kernel's readahead around it."""
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            try:
                os.preadv(fd, [bytearray(1)], 6 * 1024 * 1024, os.RWF_NOWAIT)
            except BlockingIOError:
                return True
            return False

        poll(evicted, "the file out of the page cache", timeout=5)
        assert await read_at(fd, 100_000, 16384) == data[100_000:116_384]
        assert calls == 1
        assert await read_at(fd, len(data), 16384) == b""  # past the end
    finally:
        os.close(fd)
