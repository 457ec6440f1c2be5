"""The scheduler: intervals, no overlap, errors logged and survived, one worker or all."""

from __future__ import annotations

import asyncio
import logging

import pytest

from hello.ops.tasks import Scheduler

pytestmark = pytest.mark.anyio


async def reached(event: asyncio.Event, seconds: float = 10) -> None:
    """Wait for a job to report that it got far enough."""
    await asyncio.wait_for(event.wait(), seconds)


async def test_runs_repeatedly_without_overlapping() -> None:
    scheduler = Scheduler()
    running = most = runs = ticks = 0
    target = 0
    started, release, ticked = asyncio.Event(), asyncio.Event(), asyncio.Event()

    @scheduler.every(0.01)
    async def slow() -> None:
        nonlocal running, most, runs
        running += 1
        most = max(most, running)
        started.set()
        await release.wait()  # held by the test for several of its intervals
        release.clear()
        running -= 1
        runs += 1

    @scheduler.every(0.01)
    async def clock() -> None:  # shows the intervals going by while slow is held
        nonlocal ticks
        ticks += 1
        if ticks >= target:
            ticked.set()

    scheduler.start(primary=True)
    for _ in range(3):
        await reached(started)
        started.clear()
        target = ticks + 5
        ticked.clear()
        await reached(ticked)  # five intervals passed, and slow is still its one run
        assert running == 1
        release.set()
    await reached(started)
    await scheduler.stop()
    assert most == 1 and runs == 3


async def test_an_exception_is_logged_and_the_schedule_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scheduler = Scheduler()
    calls = 0
    third = asyncio.Event()
    loop = asyncio.get_running_loop()

    @scheduler.every(0.01)
    def flaky() -> None:  # a plain function: runs in a thread
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("first run fails")
        if calls == 3:
            loop.call_soon_threadsafe(third.set)

    with caplog.at_level(logging.ERROR, logger="hello"):
        scheduler.start(primary=True)
        await reached(third)
        await scheduler.stop()
    assert "scheduled task" in caplog.text and "first run fails" in caplog.text


async def test_only_per_worker_jobs_run_outside_the_first_worker() -> None:
    scheduler = Scheduler()
    ran: list[str] = []
    worker_ran = asyncio.Event()

    @scheduler.every(10)
    async def once_per_server() -> None:
        ran.append("server")

    @scheduler.every(10, per_worker=True)
    async def every_worker() -> None:
        ran.append("worker")
        worker_ran.set()

    scheduler.start(primary=False)
    # Jobs start in the order they were declared, so had the first one been started it
    # would have run before this one reports.
    await reached(worker_ran)
    await scheduler.stop()
    assert ran == ["worker"]


async def test_stop_cancels_a_running_job() -> None:
    scheduler = Scheduler()
    started = asyncio.Event()
    cancelled = asyncio.Event()

    @scheduler.every(1)
    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # until cancelled
        except asyncio.CancelledError:
            cancelled.set()
            raise

    scheduler.start(primary=True)
    await asyncio.wait_for(started.wait(), 10)
    await scheduler.stop()
    assert cancelled.is_set()


def test_bad_intervals_are_refused() -> None:
    with pytest.raises(ValueError, match="seconds > 0"):
        Scheduler().every(0)
