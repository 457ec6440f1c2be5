"""``--reload``: restart the serving process when the app's Python files change.

This process binds the sockets and watches the files (watchfiles, as uvicorn and granian
use); it never imports the app. A forked child imports it and serves. On a change the child
gets SIGTERM and finishes what it has; then a new child imports the edited code. The
listening sockets stay open here throughout, so a connection made meanwhile waits in the
backlog and is answered by the new child, never refused. A child that cannot import the app
logs why and exits; the next change starts another.
"""

from __future__ import annotations

import importlib.util
import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from multiprocessing.process import BaseProcess
from pathlib import Path

from hello.errors import HelloError
from hello.ops.lifecycle import Board
from hello.server.worker import KILL_MARGIN, STOP_SIGNALS, Worker, serve

log = logging.getLogger("hello")

CANNOT_BUILD = 3  # a child's exit code when the app would not import


def watched(reload_dirs: Sequence[Path], pythonpath: Sequence[Path]) -> list[Path]:
    """--reload-dir, else the current directory and --pythonpath."""
    return [d.resolve() for d in (reload_dirs or [Path.cwd(), *pythonpath])]


class Reloader:
    """Serve from a child process built by ``build``; a new one after each change."""

    def __init__(
        self,
        build: Callable[[], Worker],
        directories: Sequence[Path],
        board: Board,
        graceful_timeout: float,
    ) -> None:
        self.build = build
        self.directories = list(directories)
        self.board = board
        self.graceful_timeout = graceful_timeout
        self.context = multiprocessing.get_context("fork")
        self.child: BaseProcess | None = None
        self.slot = 0
        self.stopping = threading.Event()
        self.hangup = False

    def run(self) -> None:
        from watchfiles import PythonFilter, watch  # present: run.require() checked it

        for signum in STOP_SIGNALS:
            signal.signal(signum, self._stop)
        signal.signal(signal.SIGHUP, self._hangup)
        shown = ", ".join(str(d) for d in self.directories)
        log.info("Reloading when a .py file changes under %s", shown)
        self._start()
        changes = watch(
            *self.directories,
            watch_filter=PythonFilter(),
            debounce=400,
            stop_event=self.stopping,
            rust_timeout=500,
            yield_on_timeout=True,
            raise_interrupt=False,
        )
        for changed in changes:
            if self.stopping.is_set():
                break
            if changed or self.hangup:
                names = sorted({os.path.relpath(path) for _, path in changed}) or ["SIGHUP"]
                log.info("%s: restarting", ", ".join(names))
                self.hangup = False
                self._stop_child()
                _forget_bytecode(path for _, path in changed)
                self._start()
            elif self.child is not None and not self.child.is_alive():
                self._reap()
        self._stop_child()

    def _start(self) -> None:
        self.slot = self.board.claim()
        self.child = self.context.Process(target=self._serve, name="hello-reload", daemon=True)
        self.child.start()

    def _serve(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the worker's loop handles it
        try:
            worker = self.build()
        except HelloError as error:
            detail = getattr(error, "detail", None)
            if detail:
                log.error("%s", detail.rstrip())
            log.error("%s; waiting for a change", error)
            sys.exit(CANNOT_BUILD)
        worker.lifecycle.slot = self.slot
        serve(worker)

    def _reap(self) -> None:
        """The child exited by itself: say so once, and wait for the next change."""
        assert self.child is not None
        self.child.join()
        if self.child.exitcode not in (0, CANNOT_BUILD):
            log.error("the server exited with code %s; waiting for a change", self.child.exitcode)
        self.board.release(self.slot)
        self.child = None

    def _stop_child(self) -> None:
        child, self.child = self.child, None
        if child is None:
            return
        if child.pid is not None and child.is_alive():
            os.kill(child.pid, signal.SIGTERM)
        child.join(self.graceful_timeout + KILL_MARGIN)
        if child.is_alive():
            log.warning("the server did not stop in time; killing it")
            child.kill()
            child.join()
        self.board.release(self.slot)

    def _hangup(self, signum: int, frame: object) -> None:
        self.hangup = True  # a restart, as after a change, at the watcher's next wake-up

    def _stop(self, signum: int, frame: object) -> None:
        self.stopping.set()


def _forget_bytecode(paths: Iterable[str]) -> None:
    """Remove the cached byte code of changed modules. Python trusts a .pyc whose recorded
    source size and modification second match, so an edit within the second that keeps the
    size (one -> two) would otherwise be served as the old code."""
    for path in paths:
        if path.endswith(".py"):
            try:
                Path(importlib.util.cache_from_source(path)).unlink(missing_ok=True)
            except (OSError, ValueError):
                pass  # not ours to remove, or no cache: the import compiles afresh anyway
