"""A real hello process for tests: started on port 0, found by its log, stopped by its pid."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

_RUNNING = re.compile(r"Running on (\S+://\S+)")
START_TIMEOUT = 20.0


class HelloProcess:
    """``hello ARGS`` in a child process; ``urls`` are where it listens once it is up."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        command: Sequence[str] = (sys.executable, "-m", "hello"),
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        listeners: int = 1,
    ) -> None:
        self.args = list(args)
        self.process = subprocess.Popen(
            [*command, *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            text=True,
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
                match = _RUNNING.search(line)
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
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._close()

    def _close(self) -> None:
        for pump in self._pumps:
            pump.join(5)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def run_hello(
    args: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """``hello ARGS`` to completion (for arguments that make it exit at once)."""
    return subprocess.run(
        [sys.executable, "-m", "hello", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def wait_until_ready(url: str, *, verify: object = True, timeout: float = 10.0) -> None:
    """Poll ``/readyz`` until it answers 200."""
    deadline = time.monotonic() + timeout
    with httpx.Client(verify=verify) as client:  # type: ignore[arg-type]
        while True:
            try:
                if client.get(url + "/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} not ready within {timeout}s")
            time.sleep(0.05)
