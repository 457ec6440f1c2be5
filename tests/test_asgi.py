"""The composed app in-process: routes, the greeting page, health, the static site."""

from __future__ import annotations

from importlib.resources import files

import httpx
import pytest

from hello.ops.lifecycle import Lifecycle

pytestmark = pytest.mark.anyio

INDEX = (files("hello") / "static" / "index.html").read_bytes()


async def test_index_is_the_static_file_byte_for_byte(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.content == INDEX
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert b"Greeter!</h1>" in INDEX
    assert b'href="/legacy/"' in INDEX and b'href="/hello?name=' in INDEX


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/static/style.css", "text/css; charset=utf-8"),
        ("/static/greeter.js", "text/javascript; charset=utf-8"),
        ("/static/favicon.svg", "image/svg+xml; charset=utf-8"),
        ("/static/index.html", "text/html; charset=utf-8"),
    ],
)
async def test_bundled_files_with_types(
    client: httpx.AsyncClient, path: str, content_type: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["x-content-type-options"] == "nosniff"
    name = path.removeprefix("/static/")
    assert response.content == (files("hello") / "static" / name).read_bytes()


async def test_etag_revalidation(client: httpx.AsyncClient) -> None:
    first = await client.get("/static/style.css")
    etag = first.headers["etag"]
    again = await client.get("/static/style.css", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    other = await client.get("/static/style.css", headers={"If-None-Match": '"other"'})
    assert other.status_code == 200


async def test_head_has_headers_and_no_body(client: httpx.AsyncClient) -> None:
    response = await client.head("/", headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(INDEX))


@pytest.mark.parametrize(
    "path",
    [
        "/static/",
        "/static/missing.css",
        "/static/../pyproject.toml",
        "/static/%2e%2e/asgi.py",
        "/static/..%2fasgi.py",
        "/static//etc/passwd",
        "/static/web/templates/hello.html",
        "/nope",
        "/legacyx",
        "/legacyx/",
        "/hellox",
    ],
)
async def test_unknown_and_escaping_paths_are_404(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404


async def test_static_refuses_other_methods(client: httpx.AsyncClient) -> None:
    response = await client.post("/static/style.css", content=b"x")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


async def test_greeting_escapes_the_name(client: httpx.AsyncClient) -> None:
    response = await client.get("/hello", params={"name": "<script>Ada"})
    assert response.status_code == 200
    assert "Hello, &lt;script&gt;Ada!" in response.text
    assert "<script>Ada" not in response.text


async def test_greeting_defaults_to_the_world(client: httpx.AsyncClient) -> None:
    response = await client.get("/hello")
    assert "Hello, world!</h1>" in response.text


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"


async def test_readyz_follows_the_lifecycle(
    client: httpx.AsyncClient, lifecycle: Lifecycle
) -> None:
    assert (await client.get("/readyz")).status_code == 200
    lifecycle.draining = True
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.text == "shutting down\n"
    assert (await client.get("/healthz")).status_code == 200


async def test_readyz_before_start() -> None:
    from hello.config import load
    from hello.stack.build import build_app
    from tests.conftest import asgi_client

    async with asgi_client(build_app(load(), Lifecycle())) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.text == "starting\n"
