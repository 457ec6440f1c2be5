"""Several workers: forked after binding, kept alive, replaced on SIGHUP, stopped together.

The parent process holds the listening sockets and the built app; each worker is a fork that
serves them (``server.serve``). A worker that dies is replaced (at most one a second). SIGHUP
builds a Worker from re-read settings and starts a new generation from it before the old one
is told to finish, so the sockets never stop accepting. A worker past --max-requests or
--max-worker-memory asks for a successor (SIGUSR1, and its cell of the Board): the successor
starts first, then the old worker finishes what it has, as at a reload.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess

from hello.config import Settings
from hello.errors import HelloError
from hello.ops.lifecycle import RECYCLE_SIGNAL
from hello.ops.metrics import process_gone
from hello.server.worker import KILL_MARGIN, STOP_SIGNALS, Worker, serve

log = logging.getLogger("hello")

RESTART_INTERVAL = 1.0  # at most one worker replacement a second, so a crash loop stays calm


class Supervisor:
    """Fork ``settings.workers`` workers on the shared sockets; keep that many alive.

    SIGHUP builds a Worker from re-read settings (``rebuild``) and starts a new generation of
    workers from it; once they are started the old ones get SIGTERM and finish what they
    have. The listening sockets stay open in this process throughout, so a connection that
    arrives meanwhile waits in the backlog instead of being refused. If the new settings or
    app fail, the error is logged and the old workers go on serving.
    """

    def __init__(self, worker: Worker, rebuild: Callable[[], Worker] | None = None) -> None:
        self.worker = worker
        self.rebuild = rebuild
        self.context = multiprocessing.get_context("fork")
        self.workers: list[BaseProcess] = []
        self.retiring: list[BaseProcess] = []
        self.slots: dict[BaseProcess, int] = {}  # each worker's cell of the readiness board
        self.stopping = False
        self.wake_read, self.wake_write = os.pipe()  # signal handlers write here
        os.set_blocking(self.wake_write, False)
        self.hangups = 0
        self.recycles = 0

    @property
    def settings(self) -> Settings:
        return self.worker.settings

    def run(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._stop)
        signal.signal(signal.SIGHUP, self._hangup)
        signal.signal(RECYCLE_SIGNAL, self._recycle_asked)
        while not self.stopping:
            self._populate()
            everyone = [worker.sentinel for worker in (*self.workers, *self.retiring)]
            ready = wait([*everyone, self.wake_read])
            if self.wake_read in ready:
                os.read(self.wake_read, 512)
            if self.hangups and not self.stopping:
                self.hangups = 0
                self._replace()
            if self.recycles and not self.stopping:
                self.recycles = 0
                self._recycle()
            self._reap(expected=self.stopping)
        deadline = time.monotonic() + self.settings.graceful_timeout + KILL_MARGIN
        for worker in [*self.workers, *self.retiring]:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                log.warning("worker %s did not stop in time; killing it", worker.pid)
                worker.kill()
                worker.join()

    def _populate(self) -> None:
        taken = {worker.name for worker in self.workers}
        for index in range(self.settings.workers):
            name = f"hello-worker-{index}"
            if name in taken or self.stopping:
                continue
            slot = self._board_claim()
            worker = self.context.Process(
                target=self._work, args=(self.worker, index, slot), name=name, daemon=True
            )
            worker.start()
            self.slots[worker] = slot
            self.workers.append(worker)

    def _board_claim(self) -> int:
        board = self.worker.lifecycle.board
        return board.claim() if board is not None else 0

    def _gone(self, worker: BaseProcess) -> None:
        """Bookkeeping for a worker that has exited: its metrics files, its readiness."""
        board = self.worker.lifecycle.board
        slot = self.slots.pop(worker, None)
        if board is not None and slot is not None:
            board.release(slot)
        if worker.pid is not None:
            process_gone(worker.pid)

    def _work(self, worker: Worker, index: int, slot: int) -> None:
        os.close(self.wake_read)
        os.close(self.wake_write)
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the worker's loop handles it
        signal.signal(RECYCLE_SIGNAL, signal.SIG_IGN)
        worker.lifecycle.worker_index = index  # this process's own copy, after the fork
        worker.lifecycle.slot = slot
        worker.lifecycle.supervisor = os.getppid()
        serve(worker)

    def _replace(self) -> None:
        """SIGHUP: a new generation of workers from re-read settings, then the old one goes."""
        if self.rebuild is None:
            self._signal_all(signal.SIGHUP)  # no way to re-read: reload certificates
            return
        try:
            fresh = self.rebuild()
        except HelloError as error:
            log.error("SIGHUP: %s; the running workers go on unchanged", error)
            return
        old, self.workers = self.workers, []
        self.worker = fresh
        self._populate()
        log.info(
            "SIGHUP: started %d workers with re-read settings; %d old ones finish and exit",
            len(self.workers),
            len(old),
        )
        for worker in old:
            if worker.pid is not None and worker.is_alive():
                os.kill(worker.pid, signal.SIGTERM)
        self.retiring.extend(old)

    def _recycle(self) -> None:
        """Each worker that asked for a successor gets one; then it finishes and exits."""
        board = self.worker.lifecycle.board
        if board is None:
            return
        for old in [w for w in self.workers if w in self.slots and board.recycle[self.slots[w]]]:
            board.recycle[self.slots[old]] = 0
            self.workers.remove(old)
            self._populate()  # the successor, under the same name and index
            fresh = next(worker for worker in self.workers if worker.name == old.name)
            log.info("worker %s started in place of worker %s, which finishes", fresh.pid, old.pid)
            if old.pid is not None and old.is_alive():
                os.kill(old.pid, signal.SIGTERM)
            self.retiring.append(old)
            if self.worker.metrics is not None:
                self.worker.metrics.worker_recycles.inc()

    def _reap(self, *, expected: bool) -> None:
        for worker in [worker for worker in self.retiring if not worker.is_alive()]:
            worker.join()
            self.retiring.remove(worker)
            log.info("worker %s finished (exit code %s)", worker.pid, worker.exitcode)
            self._gone(worker)
        for worker in [worker for worker in self.workers if not worker.is_alive()]:
            worker.join()
            self.workers.remove(worker)
            self._gone(worker)
            if not expected:
                if self.worker.metrics is not None:
                    self.worker.metrics.worker_restarts.inc()
                log.error(
                    "worker %s exited with code %s; starting another", worker.pid, worker.exitcode
                )
                time.sleep(RESTART_INTERVAL)

    def _signal_all(self, signum: int) -> None:
        for worker in [*self.workers, *self.retiring]:
            if worker.pid is not None and worker.is_alive():
                os.kill(worker.pid, signum)

    def _wake(self) -> None:
        try:
            os.write(self.wake_write, b"!")
        except BlockingIOError:
            pass  # the pipe is full: the loop is awake anyway

    def _hangup(self, signum: int, frame: object) -> None:
        self.hangups += 1
        self._wake()

    def _recycle_asked(self, signum: int, frame: object) -> None:
        self.recycles += 1
        self._wake()

    def _stop(self, signum: int, frame: object) -> None:
        self.stopping = True
        self._signal_all(signal.SIGTERM)
        self._wake()
