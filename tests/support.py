"""A real hello process for tests: started on port 0, found by its log, stopped by its pid."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

_RUNNING = re.compile(r"Running on (\S+://\S+)")
START_TIMEOUT = 20.0
T = TypeVar("T")


class HelloProcess:
    """``hello ARGS`` in a child process; ``urls`` are where it listens once it is up.

    Another server (``command``) works too, given the ``ready`` pattern of its log line that
    names where it listens."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        command: Sequence[str] = (sys.executable, "-m", "hello"),
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        listeners: int = 1,
        ready: re.Pattern[str] = _RUNNING,
    ) -> None:
        self.args = list(args)
        self.ready = ready
        self.process = subprocess.Popen(
            [*command, *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            text=True,
            start_new_session=True,  # its own process group: kill() reaches its workers too
        )
        self.stderr_lines: list[str] = []
        self.stdout_lines: list[str] = []
        self.urls: list[str] = []
        self._seen = threading.Condition()
        self._pumps = [
            threading.Thread(target=self._pump, args=(stream, lines), daemon=True)
            for stream, lines in (
                (self.process.stderr, self.stderr_lines),
                (self.process.stdout, self.stdout_lines),
            )
        ]
        for pump in self._pumps:
            pump.start()
        try:
            self._wait_listening(listeners)
        except BaseException:
            self.kill()
            raise

    def _pump(self, stream: object, lines: list[str]) -> None:
        assert hasattr(stream, "readline")
        for line in iter(stream.readline, ""):
            with self._seen:
                lines.append(line)
                match = self.ready.search(line)
                if match and match[1] not in self.urls:
                    self.urls.append(match[1])
                self._seen.notify_all()
        with self._seen:
            self._seen.notify_all()

    def _wait_listening(self, listeners: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        with self._seen:
            while len(self.urls) < listeners:
                if self.process.poll() is not None:
                    raise RuntimeError(f"hello exited {self.process.returncode}: {self.stderr}")
                if not self._seen.wait(timeout=max(0.0, deadline - time.monotonic())):
                    raise RuntimeError(f"no start within {START_TIMEOUT}s: {self.stderr}")

    def wait_for_output(
        self, text: str, *, count: int = 1, stream: str = "stderr", timeout: float = 10.0
    ) -> list[str]:
        """Block until ``count`` lines of ``stream`` (from the start) contain ``text``; those
        lines. Woken by each line the process writes, so nothing sleeps."""
        lines = self.stderr_lines if stream == "stderr" else self.stdout_lines
        deadline = time.monotonic() + timeout
        with self._seen:
            while len(found := [line for line in lines if text in line]) < count:
                left = deadline - time.monotonic()
                if left <= 0 or not self._seen.wait(timeout=left):
                    raise AssertionError(
                        f"{count} {stream} line(s) with {text!r} not seen within {timeout}s: "
                        + "".join(lines)
                    )
            return found

    def count_output(self, text: str, *, stream: str = "stderr") -> int:
        lines = self.stderr_lines if stream == "stderr" else self.stdout_lines
        with self._seen:
            return sum(text in line for line in lines)

    @property
    def url(self) -> str:
        return self.urls[0]

    @property
    def stderr(self) -> str:
        with self._seen:
            return "".join(self.stderr_lines)

    def wait(self, timeout: float) -> int:
        """Wait for an exit that is already under way; the exit code."""
        code = self.process.wait(timeout)
        self._close()
        return code

    def signal(self, signum: int) -> None:
        os.kill(self.process.pid, signum)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, then wait; the exit code."""
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        self._close()
        return code

    def kill(self) -> None:
        """SIGKILL to the process group (the pid is its id): hello and any workers it forked,
        so no orphan keeps the output pipes open."""
        self._kill_group()
        self.process.wait()
        self._close()

    def _kill_group(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _close(self) -> None:
        for pump in self._pumps:
            pump.join(5)
        if any(pump.is_alive() for pump in self._pumps):
            # A forked worker outlived hello and holds the pipes; closing them under a
            # blocked reader would hang, so the group goes down first.
            self._kill_group()
            for pump in self._pumps:
                pump.join(5)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def run_hello(
    args: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """``hello ARGS`` to completion (for arguments that make it exit at once)."""
    return subprocess.run(
        [sys.executable, "-m", "hello", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=cwd,
    )


def poll(
    check: Callable[[], T | None],
    what: str,
    timeout: float,
    *,
    errors: tuple[type[BaseException], ...] = (),
    every: float = 0.05,
) -> T:
    """Call ``check`` until it returns something true, and return that; ``errors`` raised by
    it count as "not yet". The one place the tests wait for a state they cannot be told of."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except errors:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(every)
