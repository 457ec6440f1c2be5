"""The bundled site in a real browser: Debian's Chromium, headless, driven by Playwright.

Chromium trusts the test CA as a user's browser would, through the NSS database in its home
(``certutil``), and loads every page over HTTPS, where it negotiates HTTP/2. Each page must
come over h2, log no console error, fail no request and apply the stylesheet; the index
page's live view must receive WebSocket frames; the upload form must work. Screenshots go
to build/screenshots/ for a person to look at.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, WebSocket, sync_playwright

from tests.conftest import Certs, clean_environ
from tests.support import HelloProcess
from tests.test_site import contrast

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).parent.parent / "build" / "screenshots"
# As root and offline: no sandbox, no GPU, no calls home (refused here, and slow to fail).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 3000  # the live view's first frames, as a visitor would wait for them
LIGHT_ACCENT = "rgb(47, 111, 78)"  # --accent of style.css
DARK_ACCENT = "rgb(125, 211, 168)"


@dataclass
class Visit:
    """What a page load did, as the browser reports it."""

    console_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    error_statuses: list[str] = field(default_factory=list)
    frames: list[str | bytes] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on(
            "console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None
        )
        page.on("pageerror", lambda error: self.console_errors.append(str(error)))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url}: {r.failure}"))
        page.on(
            "response",
            lambda r: (
                self.error_statuses.append(f"{r.status} {r.url}") if r.status >= 400 else None
            ),
        )
        page.on("websocket", self._websocket)

    def _websocket(self, socket: WebSocket) -> None:
        socket.on("framereceived", self._frame)

    def _frame(self, payload: str | bytes) -> None:  # a function: Playwright tags its handlers
        self.frames.append(payload)

    def assert_clean(self) -> None:
        assert self.console_errors == []
        assert self.failed == []
        assert self.error_statuses == []


def trust(ca_file: Path, home: Path) -> None:
    """Make Chromium, run with ``home`` as HOME, trust ``ca_file``, as the README says."""
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True, exist_ok=True)
    command = [
        "certutil",
        "-d",
        f"sql:{nssdb}",
        "-A",
        "-t",
        "C,,",
        "-n",
        "test CA",
        "-i",
        str(ca_file),
    ]
    subprocess.run(command, check=True)


def launch(playwright: Playwright, home: Path) -> Browser:
    env: dict[str, str | float | bool] = {**clean_environ(), "HOME": str(home)}
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, env=env)


@pytest.fixture(scope="module")
def site(certs: Certs) -> Iterator[str]:
    server = HelloProcess(["--bind", "127.0.0.1:0", *certs.flags()], env=clean_environ())
    try:
        yield server.url.replace("127.0.0.1", "localhost")
        assert server.stop() == 0, server.stderr
        assert "Traceback" not in server.stderr, server.stderr
    finally:
        server.kill()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as playwright:  # one a thread: its loop runs until the exit
        yield playwright


@pytest.fixture(scope="module")
def browser(
    playwright: Playwright, certs: Certs, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Browser]:
    home = tmp_path_factory.mktemp("home")
    trust(certs.ca_file, home)
    browser = launch(playwright, home)
    yield browser
    browser.close()


def load(browser: Browser, url: str, *, dark: bool = False) -> tuple[Page, Visit]:
    page = browser.new_page(color_scheme="dark" if dark else "light")
    visit = Visit()
    visit.watch(page)
    response = page.goto(url)
    assert response is not None and response.ok, url
    return page, visit


def assert_served_and_styled(page: Page, accent: str = LIGHT_ACCENT) -> None:
    protocol = page.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol")
    assert protocol == "h2"
    assert page.locator('meta[name="viewport"]').count() == 1
    assert page.locator('link[rel="icon"]').count() == 1
    assert page.evaluate("getComputedStyle(document.querySelector('h1')).color") == accent


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def test_the_index_page_shows_the_live_view(browser: Browser, site: str) -> None:
    page, visit = load(browser, site + "/")
    assert_served_and_styled(page)
    page.wait_for_function(
        "document.getElementById('live-requests').textContent !== '–'", timeout=WAIT_MS
    )
    first = page.text_content("#live-uptime")
    page.wait_for_function(
        f"document.getElementById('live-uptime').textContent !== {first!r}", timeout=WAIT_MS
    )  # a second frame, a second later
    assert len(visit.frames) >= 2
    assert page.text_content("#live-page") == "HTTP/2"
    state = page.text_content("#live-state") or ""
    assert state == "connected, WebSocket over HTTP/2", state  # RFC 8441, in Chromium
    assert re.fullmatch(r"\d\d:\d\d:\d\d UTC", page.text_content("#live-time") or "")
    iso = page.get_attribute("#live-time", "title") or ""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", iso), iso
    screenshot(page, "index")
    visit.assert_clean()


@pytest.mark.parametrize(("path", "name"), [("/hello?name=Ada", "hello"), ("/legacy/", "legacy")])
def test_the_dynamic_pages(browser: Browser, site: str, path: str, name: str) -> None:
    page, visit = load(browser, site + path)
    assert_served_and_styled(page)
    screenshot(page, name)
    visit.assert_clean()


def test_the_upload_form(browser: Browser, site: str, tmp_path: Path) -> None:
    upload = tmp_path / "photo.bin"
    upload.write_bytes(os.urandom(300_000))
    page, visit = load(browser, site + "/legacy/upload")
    assert_served_and_styled(page)
    page.set_input_files("#file", upload)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.text_content("#bytes") == "300,000"
    assert page.text_content("#sha256") == hashlib.sha256(upload.read_bytes()).hexdigest()
    assert_served_and_styled(page)
    screenshot(page, "upload")
    visit.assert_clean()


def test_dark_mode_keeps_its_contrast(browser: Browser, site: str) -> None:
    page, visit = load(browser, site + "/", dark=True)
    assert_served_and_styled(page, DARK_ACCENT)
    colours = page.evaluate(
        """() => [...document.querySelectorAll('a, p, dt, dd, h1, h2, li')].map(e => [
               getComputedStyle(e).color, getComputedStyle(document.body).backgroundColor])"""
    )
    for text, ground in colours:
        assert contrast(hex_colour(text), hex_colour(ground)) >= 4.5, (text, ground)
    screenshot(page, "index-dark")
    visit.assert_clean()


@pytest.mark.parametrize("path", ["/", "/hello?name=Ada", "/legacy/", "/legacy/upload"])
def test_pages_fit_a_phone_screen(browser: Browser, site: str, path: str) -> None:
    """390 CSS pixels wide at 3 device pixels each: nothing scrolls sideways, the logo is
    drawn from its SVG (sharp at any density)."""
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=3)
    visit = Visit()
    visit.watch(page)
    page.goto(site + path)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    logo = page.locator("h1 img")
    assert (logo.get_attribute("src") or "").endswith(".svg")
    if path == "/":
        screenshot(page, "index-phone")
    visit.assert_clean()


def test_error_pages_are_styled(browser: Browser, site: str) -> None:
    page = browser.new_page()
    response = page.goto(site + "/no/such/page")
    assert response is not None and response.status == 404
    assert_served_and_styled(page)
    assert page.title() == "404 Not Found"
    screenshot(page, "404")


def test_self_signed_is_trusted_after_the_command_it_prints(
    playwright: Playwright, tmp_path: Path
) -> None:
    """--self-signed, then the one command its log gives for Chromium: HTTPS over h2."""
    state, home = tmp_path / "state", tmp_path / "home"
    args = ["--self-signed", "--state-dir", str(state), "--bind", "127.0.0.1:0"]
    server = HelloProcess(args, env=clean_environ())
    try:
        printed = re.search(r"to trust it in Chromium and Chrome: (.*)", server.stderr)
        assert printed is not None
        env = clean_environ() | {"HOME": str(home)}
        subprocess.run(["sh", "-c", printed[1]], check=True, env=env)
        browser = launch(playwright, home)
        try:
            page, visit = load(browser, server.url.replace("127.0.0.1", "localhost") + "/")
            assert_served_and_styled(page)
            visit.assert_clean()
        finally:
            browser.close()
        assert server.stop() == 0
    finally:
        server.kill()


def hex_colour(css: str) -> str:
    """``rgb(47, 111, 78)`` as ``#2f6f4e``."""
    return "#" + "".join(f"{int(c):02x}" for c in re.findall(r"\d+", css)[:3])
