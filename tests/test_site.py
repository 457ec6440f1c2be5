"""The bundled site as a visitor meets it: styled pages and errors, the legacy app's upload
form, the palettes' contrast, and the index page's live view over a real WebSocket."""

from __future__ import annotations

import hashlib
import json
import re
import signal
import socket
from pathlib import Path

import httpx
import pytest
from quart import Quart
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from hello.ops.lifecycle import Lifecycle
from hello.ops.tasks import Scheduler
from hello.site import web
from hello.site.clock import Clock
from hello.site.live import SiteStats
from tests.conftest import Certs, asgi_client, clean_environ
from tests.h2client import host_port, websocket_over_http2
from tests.support import HelloProcess

STATIC = Path(__file__).parent.parent / "static"
PAGES = ("/", "/hello?name=Ada", "/legacy/", "/legacy/upload", "/nope", "/legacy/nope")


@pytest.mark.anyio
@pytest.mark.parametrize("path", PAGES)
async def test_every_page_has_a_viewport_a_description_a_stylesheet_and_a_favicon(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = response.text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert re.search(r'<meta name="description" content="[^"]{20,}">', page)
    stylesheet = re.search(r'<link rel="stylesheet" href="(/static/style[.\w]*css)">', page)
    icon = re.search(r'<link rel="icon" href="(/static/favicon[.\w]*svg)"', page)
    touch = re.search(
        r'<link rel="apple-touch-icon" href="(/static/apple-touch-icon[.\w]*png)"', page
    )
    assert stylesheet and icon and touch, page
    for linked in (stylesheet[1], icon[1], touch[1]):
        assert (await client.get(linked)).status_code == 200


@pytest.mark.anyio
async def test_error_pages_are_the_sites_own(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nope")
    assert missing.status_code == 404
    assert "<title>404 Not Found</title>" in missing.text
    assert "Back to the greeter" in missing.text
    wrong = await client.post("/hello")
    assert wrong.status_code == 405
    assert set(wrong.headers["allow"].split(", ")) >= {"GET", "HEAD"}
    assert "<title>405 Method Not Allowed</title>" in wrong.text
    legacy = await client.get("/legacy/nope")
    assert legacy.status_code == 404 and "Back to the greeter" in legacy.text
    for response in (missing, wrong, legacy):
        assert "Werkzeug" not in response.text and "Quart" not in response.text
        assert "server" not in response.headers  # in-process: the wire adds it, not the app


@pytest.mark.anyio
async def test_an_exception_in_a_page_is_logged_and_answered_with_the_500_page(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scheduler = Scheduler()
    clock = Clock(scheduler)
    app: Quart = web.create_app(Lifecycle(), lambda n: n, scheduler, clock, SiteStats())

    @app.get("/boom")
    async def boom() -> str:
        raise RuntimeError("a bug in a page")

    async with asgi_client(app) as client:  # type: ignore[arg-type]
        response = await client.get("/boom")
    assert response.status_code == 500
    assert "<title>500 Internal Server Error</title>" in response.text
    assert "a bug in a page" not in response.text  # the visitor is not shown the error
    assert "RuntimeError: a bug in a page" in caplog.text  # the operator is


@pytest.mark.anyio
async def test_the_upload_form_counts_and_hashes_a_file(client: httpx.AsyncClient) -> None:
    form = await client.get("/legacy/upload")
    assert form.status_code == 200
    assert '<form action="/legacy/upload" method="post" enctype="multipart/form-data">' in form.text
    assert "Up to 16 MiB" in form.text
    data = bytes(range(256)) * 1000
    done = await client.post("/legacy/upload", files={"file": ("notes.bin", data)})
    assert done.status_code == 200
    assert re.search(r'<dd id="bytes">256,000</dd>', done.text)
    assert f'<code id="sha256">{hashlib.sha256(data).hexdigest()}</code>' in done.text
    assert "Received notes.bin" in done.text
    empty = await client.post("/legacy/upload", files={"other": ("x", b"x")})
    assert empty.status_code == 400 and "Choose a file." in empty.text


def _palettes() -> dict[str, dict[str, str]]:
    """The custom properties of style.css, for the light and the dark scheme."""
    css = (STATIC / "style.css").read_text()
    light = css[css.index(":root {") : css.index("@media (prefers-color-scheme: dark)")]
    dark = css[css.index("@media (prefers-color-scheme: dark)") :]
    dark = dark[: dark.index("}\n}") + 1]
    pattern = re.compile(r"--([\w-]+):\s*(#[0-9a-f]{6});")
    return {"light": dict(pattern.findall(light)), "dark": dict(pattern.findall(dark))}


def contrast(one: str, two: str) -> float:
    """WCAG 2's contrast ratio of two #rrggbb colours."""

    def luminance(colour: str) -> float:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(one), luminance(two)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_text_colour_has_4_5_to_1_contrast(scheme: str) -> None:
    palette = _palettes()[scheme]
    assert contrast("#2f6f4e", "#121212") < 4.5  # the old dark-mode accent: this test sees it
    pairs = [
        (text, ground) for text in ("text", "muted", "accent") for ground in ("background", "panel")
    ]
    pairs.append(("on-accent", "accent"))
    for text, ground in pairs:
        ratio = contrast(palette[text], palette[ground])
        assert ratio >= 4.5, f"{scheme}: --{text} on --{ground} is {ratio:.2f}:1"


# --- the live view, over a real server ---


def live_over_http1(server: HelloProcess, count: int) -> list[dict[str, object]]:
    """``count`` messages of /live over a WebSocket on HTTP/1.1."""
    connection = WSConnection(ConnectionType.CLIENT)
    messages: list[dict[str, object]] = []
    with socket.create_connection(host_port(server), timeout=5) as sock:
        sock.sendall(connection.send(Request(host="localhost", target="/live")))
        while len(messages) < count:
            connection.receive_data(sock.recv(65536) or None)
            for event in connection.events():
                if isinstance(event, TextMessage):
                    messages.append(json.loads(event.data))
                elif isinstance(event, CloseConnection):
                    raise AssertionError(f"closed: {event}")
                else:
                    assert isinstance(event, AcceptConnection), event
        sock.sendall(connection.send(CloseConnection(code=1000)))
    return messages


def test_the_live_view_sends_the_servers_state_each_second() -> None:
    server = HelloProcess(["--bind", "127.0.0.1:0"], env=clean_environ())
    try:
        first, second = live_over_http1(server, 2)
        with httpx.Client() as client:
            for _ in range(3):
                assert client.get(server.url + "/hello").status_code == 200
        (third,) = live_over_http1(server, 1)
        assert first["protocol"] == "HTTP/1.1"
        assert isinstance(first["requests"], int) and isinstance(third["requests"], int)
        assert third["requests"] >= first["requests"] + 3  # this process's HTTP requests
        assert isinstance(second["uptime"], int) and second["uptime"] >= 0
        assert second["time"] is None or re.fullmatch(
            r"\d{4}-\d\d-\d\dT[\d:]{8}\+00:00", str(second["time"])
        )
        assert third["time"] is not None  # the scheduled task has run by now
        assert server.stop() == 0
    finally:
        server.kill()


def test_the_live_view_over_http2(certs: Certs, http2_engine: str) -> None:
    args = ["--bind", "127.0.0.1:0", *certs.flags(), "--http2-engine", http2_engine]
    server = HelloProcess(args, env=clean_environ())
    try:
        replies = websocket_over_http2(server, certs, "/live", ["a", "b"])
        assert [json.loads(reply)["protocol"] for reply in replies] == ["HTTP/2", "HTTP/2"]
        assert server.stop() == 0
        assert "Traceback" not in server.stderr, server.stderr
    finally:
        server.kill()


def test_a_stopping_server_closes_the_live_view_with_going_away() -> None:
    """An open page does not hold a stop (or a reload) for the graceful timeout."""
    server = HelloProcess(
        ["--bind", "127.0.0.1:0", "--graceful-timeout", "30"], env=clean_environ()
    )
    try:
        connection = WSConnection(ConnectionType.CLIENT)
        closed: CloseConnection | None = None
        stopping = False
        with socket.create_connection(host_port(server), timeout=10) as sock:
            sock.sendall(connection.send(Request(host="localhost", target="/live")))
            while closed is None:
                connection.receive_data(sock.recv(65536) or None)
                for event in connection.events():
                    if isinstance(event, TextMessage) and not stopping:
                        server.signal(signal.SIGTERM)  # after the first message
                        stopping = True
                    elif isinstance(event, CloseConnection):
                        closed = event
                        sock.sendall(connection.send(event.response()))
        assert closed.code == 1001, closed
        assert server.wait(timeout=10) == 0  # well inside --graceful-timeout 30
    finally:
        server.kill()
