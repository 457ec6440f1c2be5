"""``--reload``: an edited module is served without a restart by hand, no connection is
refused meanwhile, and an edit that breaks the import waits for the next one."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import clean_environ
from tests.support import HelloProcess, poll, run_hello

APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": b"{text}"}})
"""


def write_app(directory: Path, text: str) -> None:
    (directory / "devapp.py").write_text(APP.format(text=text))


def served_within(url: str, text: str, seconds: float) -> bool:
    """Whether ``url`` answers ``text`` before ``seconds`` pass (polled)."""
    served = lambda: httpx.get(url, timeout=5).text == text  # noqa: E731
    return poll(served, f"{url} answering {text!r}", seconds, errors=(httpx.TransportError,))


class Poller:
    """Requests ``url`` back to back on new connections, counting the ones that fail."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answered = 0
        self.failures: list[str] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                httpx.get(self.url, timeout=15)
                self.answered += 1
            except httpx.TransportError as error:
                self.failures.append(repr(error))

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    write_app(tmp_path, "one")
    yield tmp_path


def test_an_edit_is_served_and_no_connection_is_refused(project: Path) -> None:
    # Byte code is written, as on a developer's machine (this one's environment may say not).
    environ = {k: v for k, v in clean_environ().items() if k != "PYTHONDONTWRITEBYTECODE"}
    server = HelloProcess(
        ["--bind", "127.0.0.1:0", "--reload", "devapp:app"], env=environ, cwd=project
    )
    try:
        assert served_within(server.url, "one", 10)
        poller = Poller(server.url)
        try:
            # Same size and modification time as the code already compiled: only a reloader
            # that drops the stale byte code serves the edit.
            source = project / "devapp.py"
            stamp = source.stat().st_mtime_ns
            write_app(project, "two")
            os.utime(source, ns=(stamp, stamp))
            assert (project / "__pycache__").is_dir()
            assert served_within(server.url, "two", 10)
            write_app(project, "three")
            assert served_within(server.url, "three", 10)
        finally:
            poller.stop()
        assert poller.failures == [] and poller.answered > 0
        # An edit that breaks the import: the error is logged, the next edit is served.
        (project / "devapp.py").write_text("def app(:\n")
        server.wait_for_output("waiting for a change")
        assert "SyntaxError" in server.stderr
        write_app(project, "four")
        assert served_within(server.url, "four", 10)
    finally:
        assert server.stop() == 0


def test_reload_is_for_one_worker() -> None:
    done = run_hello(["--reload", "--workers", "2"], env=clean_environ())
    assert done.returncode == 2
    assert "--reload" in done.stderr and "--workers 2" in done.stderr
    assert "use --workers 1" in done.stderr
