"""Worker recycling: --max-requests (with jitter) and --max-worker-memory replace a worker by a
fresh one under load, and nothing a client sent is lost."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.conftest import clean_environ
from tests.support import HelloProcess, run_hello
from tests.test_hostile import wrk, wrk_report

pytestmark = pytest.mark.slow

APPS = Path(__file__).parent / "apps"
REPLACED = "started in place of worker"


def operations_url(server: HelloProcess) -> str:
    (line,) = server.wait_for_output("Operations on http://")
    found = re.search(r"Operations on (http://[\d.]+:\d+)", line)
    assert found is not None
    return found[1]


def recycled(metrics_text: str) -> float:
    found = re.search(r"^hello_worker_recycles_total (\S+)$", metrics_text, re.MULTILINE)
    assert found is not None, metrics_text
    return float(found[1])


@pytest.mark.parametrize("workers", [1, 2])
def test_max_requests_replaces_workers_under_load_and_loses_nothing(workers: int) -> None:
    args = ["--bind", "127.0.0.1:0", "--workers", str(workers), "--metrics-bind", "127.0.0.1:0"]
    args += ["--max-requests", "2000", "--max-requests-jitter", "500"]
    server = HelloProcess(args, env=clean_environ())
    try:
        with wrk(server.url + "/", 6) as load:
            server.wait_for_output(REPLACED, count=2 * workers, timeout=20)
            requests, errors, report = wrk_report(load)
        assert requests > 0 and errors == 0, report  # and no non-2xx (wrk_report)
        # The supervisor logs each replacement, then counts it: every one counted is logged.
        counted = int(recycled(httpx.get(operations_url(server) + "/metrics").text))
        assert counted >= 2 * workers
        server.wait_for_output(REPLACED, count=counted)
        assert server.count_output("asking for a fresh one") >= counted
        assert "requests (--max-requests 2000 + " in server.stderr
        assert httpx.get(server.url + "/").status_code == 200
    finally:
        assert server.stop() == 0
    assert "Traceback" not in server.stderr


def test_a_worker_past_its_memory_limit_is_replaced() -> None:
    """Each request to the leaky app keeps 4 MiB: past 128 MiB its worker is replaced, and
    every request is answered meanwhile."""
    args = ["--bind", "127.0.0.1:0", "--max-worker-memory", "128MiB", "leaky_root:app"]
    server = HelloProcess(args, env=clean_environ(), cwd=APPS)
    try:
        with httpx.Client() as client:
            for _ in range(60):
                assert client.get(server.url + "/").status_code == 200
        server.wait_for_output(REPLACED, timeout=10)
        assert re.search(r"uses \d+ MiB \(--max-worker-memory 128 MiB\)", server.stderr)
        with httpx.Client() as client:
            assert client.get(server.url + "/").status_code == 200
    finally:
        assert server.stop() == 0


def test_a_memory_limit_below_a_fresh_worker_is_said_once() -> None:
    args = ["--bind", "127.0.0.1:0", "--max-worker-memory", "1MiB"]
    server = HelloProcess(args, env=clean_environ())
    try:
        server.wait_for_output("is below what a fresh worker uses")
        assert httpx.get(server.url + "/").status_code == 200
        assert REPLACED not in server.stderr
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-requests-jitter", "5"], "--max-requests-jitter 5 is only used with"),
        (["--max-requests", "5", "--reload"], "--max-requests 5 with --reload"),
        (["--max-requests", "-1"], "--max-requests '-1'"),
        (["--max-worker-memory", "lots"], "--max-worker-memory 'lots': expected a size"),
    ],
)
def test_recycling_mistakes_are_one_line(args: list[str], message: str) -> None:
    done = run_hello(["--bind", "127.0.0.1:0", *args], env=clean_environ())
    assert done.returncode == 2
    assert done.stderr.startswith("hello: error: ") and message in done.stderr
    assert done.stderr.count("\n") == 1
