"""The /legacy WSGI mount: prefixes, SCRIPT_NAME, whole bodies, limits."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from hello.asgi_types import Message, Receive, Scope, Send
from hello.config import load
from hello.ops.lifecycle import Lifecycle
from hello.stack.build import build_app
from hello.stack.mounts import PrefixDispatcher, check_prefix
from tests.conftest import asgi_client

pytestmark = pytest.mark.anyio


async def test_legacy_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/legacy/")
    assert response.status_code == 200
    assert "Hello world, I am Flask!" in response.text


async def test_legacy_urls_carry_the_prefix(client: httpx.AsyncClient) -> None:
    response = await client.get("/legacy/")
    assert 'href="/legacy/upload"' in response.text


async def test_bare_prefix_redirects_into_the_mount(client: httpx.AsyncClient) -> None:
    response = await client.get("/legacy")
    assert response.status_code == 308
    assert response.headers["location"].endswith("/legacy/")


async def test_upload_with_length(client: httpx.AsyncClient) -> None:
    body = bytes(range(256)) * 4096
    response = await client.post("/legacy/upload", content=body)
    assert response.json() == {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}


async def test_chunked_upload_without_length_arrives_whole(client: httpx.AsyncClient) -> None:
    chunks = [bytes([n]) * 10_000 for n in range(200)]  # 2 MB in 200 messages: spools to disk

    async def stream() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    response = await client.post("/legacy/upload", content=stream())
    body = b"".join(chunks)
    assert response.json() == {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}


async def test_empty_post(client: httpx.AsyncClient) -> None:
    response = await client.post("/legacy/upload")
    assert response.json() == {"bytes": 0, "sha256": hashlib.sha256(b"").hexdigest()}


def small_limit_client() -> httpx.AsyncClient:
    app = build_app(load(flags={"max_body_size": "1KiB"}), Lifecycle(started=True))
    return asgi_client(app)


async def test_declared_body_over_the_limit_is_413() -> None:
    async with small_limit_client() as client:
        response = await client.post("/legacy/upload", content=b"x" * 1025)
        assert response.status_code == 413
        assert "1024 bytes" in response.text
        assert response.headers["connection"] == "close"
        fits = await client.post("/legacy/upload", content=b"x" * 1024)
        assert fits.json()["bytes"] == 1024


def upload_scope(headers: list[tuple[bytes, bytes]] | None = None) -> Scope:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/legacy/upload",
        "raw_path": b"/legacy/upload",
        "query_string": b"",
        "root_path": "",
        "headers": headers or [],
        "client": ("127.0.0.1", 1),
        "server": ("t", 80),
    }


async def test_streamed_body_over_the_limit_is_answered_413_at_once_then_discarded() -> None:
    app = build_app(load(flags={"max_body_size": "1KiB"}), Lifecycle(started=True))
    received = 0
    answered_after: int | None = None
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal received
        received += 1
        return {"type": "http.request", "body": b"x" * 512, "more_body": received < 100}

    async def send(message: Message) -> None:
        nonlocal answered_after
        if message["type"] == "http.response.start":
            answered_after = received
        sent.append(message)

    await app(upload_scope(), receive, send)
    assert sent[0]["status"] == 413
    assert answered_after == 3  # the chunk that crossed 1 KiB, not the end of the body
    assert received == 100  # the rest was read and dropped, so the client sees the answer
    assert sent[-1] == {"type": "http.response.body", "body": b""}


async def test_client_gone_mid_body_gets_no_answer() -> None:
    app = build_app(load(), Lifecycle(started=True))
    sent: list[Message] = []
    messages: Iterator[Message] = iter(
        [{"type": "http.request", "body": b"abc", "more_body": True}, {"type": "http.disconnect"}]
    )

    async def receive() -> Message:
        return next(messages)

    async def send(message: Message) -> None:
        sent.append(message)

    await app(upload_scope(), receive, send)
    assert sent == []


async def _echo_root(scope: Scope, receive: Receive, send: Send) -> None:
    body = f"{scope.get('root_path', '')}|{scope['path']}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def _named(name: str) -> object:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = f"{name}|{scope['root_path']}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/a", "a|/a"),
        ("/a/", "a|/a"),
        ("/a/x", "a|/a"),
        ("/ab", "|/ab"),
        ("/a/b", "ab|/a/b"),
        ("/a/b/c", "ab|/a/b"),
        ("/a/bc", "a|/a"),
        ("/", "|/"),
    ],
)
async def test_dispatch_matches_whole_segments_longest_first(path: str, expected: str) -> None:
    dispatcher = PrefixDispatcher(_echo_root, {"/a": _named("a"), "/a/b": _named("ab")})  # type: ignore[dict-item]
    async with asgi_client(dispatcher) as client:
        assert (await client.get(path)).text == expected


@pytest.mark.parametrize("prefix", ["legacy", "/legacy/", "/", "", "/a//b", "/a/../b"])
def test_bad_prefixes(prefix: str) -> None:
    with pytest.raises(ValueError, match="mount prefix"):
        check_prefix(prefix)
