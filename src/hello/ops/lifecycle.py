"""What the health endpoints report: has this process started serving, is it shutting down;
and a worker's request to be replaced (--max-requests, --max-worker-memory).

Each serving process has a Lifecycle. Where a parent process answers the probes for its
children (several workers, or --reload), they share a ``Board``: one byte a serving process,
in memory shared across the fork, set while that process is ready; and one more, set by a
worker that asks its supervisor for a successor (it then sends the supervisor SIGUSR1).
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("hello")

RECYCLE_SIGNAL = signal.SIGUSR1  # worker to supervisor: a cell of Board.recycle is set

SLOTS = 4096  # serving processes alive at once, old generations included


class Board:
    """Which of a parent's serving processes are ready, as each of them reports it."""

    def __init__(self) -> None:
        self.cells: Any = multiprocessing.RawArray(ctypes.c_ubyte, SLOTS)
        self.recycle: Any = multiprocessing.RawArray(ctypes.c_ubyte, SLOTS)
        self.taken: set[int] = set()

    def claim(self) -> int:
        """A free slot for a process about to be forked (in the parent)."""
        slot = next(index for index in range(SLOTS) if index not in self.taken)
        self.taken.add(slot)
        self.cells[slot] = self.recycle[slot] = 0
        return slot

    def release(self, slot: int) -> None:
        """The process in ``slot`` is gone (in the parent)."""
        self.cells[slot] = self.recycle[slot] = 0
        self.taken.discard(slot)

    def any_ready(self) -> bool:
        return any(self.cells[slot] for slot in self.taken)


class Lifecycle:
    """Shared by the server (which drains it) and the probes (which report it)."""

    def __init__(self, board: Board | None = None, *, started: bool = False) -> None:
        self._started = started
        self._draining = False
        self.worker_index = 0  # 0 in the first worker (and when there is only one)
        self.board = board
        self.slot = 0  # this process's cell of ``board``, set after the fork
        self.supervisor: int | None = None  # the pid that replaces this worker on request
        self.recycling = False
        # Set by the serving process: returns once its last connections have closed (or its
        # time is up); awaited before the apps' lifespan shutdown.
        self.quiesce: Callable[[], Awaitable[None]] | None = None

    @property
    def started(self) -> bool:
        return self._started

    @started.setter
    def started(self, value: bool) -> None:
        self._started = value
        self._publish()

    @property
    def draining(self) -> bool:
        return self._draining

    @draining.setter
    def draining(self, value: bool) -> None:
        self._draining = value
        self._publish()

    @property
    def primary(self) -> bool:
        """Whether this worker runs the scheduled tasks that run once per server."""
        return self.worker_index == 0

    @property
    def ready(self) -> bool:
        return self._started and not self._draining

    def _publish(self) -> None:
        if self.board is not None:
            self.board.cells[self.slot] = 1 if self.ready else 0

    def recycle(self, reason: str) -> None:
        """Ask the supervisor for a successor; it starts one, then stops this process
        gracefully, as at a reload. Once: later calls do nothing."""
        if self.recycling or self.draining:
            return
        self.recycling = True
        if self.board is None or self.supervisor is None:
            return  # no supervisor (--check, tests): nothing replaces this process
        log.info("worker %d %s: asking for a fresh one", os.getpid(), reason)
        self.board.recycle[self.slot] = 1
        os.kill(self.supervisor, RECYCLE_SIGNAL)
