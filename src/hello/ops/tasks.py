"""Scheduled tasks in the server process, instead of cron.

    scheduler = Scheduler()

    @scheduler.every(60, jitter=5)
    async def refresh() -> None: ...

A job runs at once when serving starts, then every ``seconds`` (plus up to ``jitter`` random
seconds), counted from the start of the previous run, never overlapping itself: a run that
takes longer delays the next. An exception is logged with its traceback and the schedule
goes on. Plain functions run in a thread, coroutines on the event loop. With several workers
a job runs in the first worker only, unless it is declared ``per_worker=True``. Jobs are
cancelled when the server shuts down.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger("hello")

JobFunction = Callable[[], Awaitable[None] | None]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Job:
    function: JobFunction
    seconds: float
    jitter: float
    per_worker: bool

    @property
    def name(self) -> str:
        return getattr(self.function, "__qualname__", repr(self.function))


class Scheduler:
    def __init__(self) -> None:
        self.jobs: list[Job] = []
        self._running: list[asyncio.Task[None]] = []

    def every(
        self, seconds: float, *, jitter: float = 0.0, per_worker: bool = False
    ) -> Callable[[F], F]:
        """Decorate a function to run every ``seconds``."""
        if seconds <= 0 or jitter < 0:
            raise ValueError("a job needs seconds > 0 and jitter >= 0")

        def register(function: F) -> F:
            self.jobs.append(Job(function, seconds, jitter, per_worker))
            return function

        return register

    def start(self, *, primary: bool) -> None:
        """Start the jobs this worker runs: all of them if ``primary``, else per-worker ones."""
        for job in self.jobs:
            if primary or job.per_worker:
                self._running.append(asyncio.ensure_future(self._repeat(job)))

    async def stop(self) -> None:
        for task in self._running:
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        self._running.clear()

    async def _repeat(self, job: Job) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await run_once(job)
            pause = job.seconds + random.uniform(0, job.jitter) - (loop.time() - started)
            await asyncio.sleep(max(0.0, pause))


async def run_once(job: Job) -> None:
    try:
        if inspect.iscoroutinefunction(job.function):
            await job.function()
        else:
            result = await asyncio.to_thread(job.function)
            if inspect.isawaitable(result):
                await result
    except Exception:
        log.exception("scheduled task %s failed; it runs again in %.0f s", job.name, job.seconds)
    else:
        log.debug("scheduled task %s ran", job.name)
