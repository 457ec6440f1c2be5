"""dist/hello.pyz, built for real: reproducible, and serving on a bare python3 as any user."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Certs, make_certs
from tests.support import HelloProcess

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
BARE_PYTHON = "/usr/bin/python3"
BARE_PATH = "/usr/bin:/bin"
NOBODY = 65534


def build(checkout: Path, output: Path) -> Path:
    subprocess.run(
        [sys.executable, str(checkout / "scripts" / "build"), "--output", str(output)],
        check=True,
        capture_output=True,
    )
    return output


@pytest.fixture(scope="module")
def shared_dir() -> Iterator[Path]:
    """A directory every user may read: the pyz and a test certificate pair go here."""
    directory = Path(tempfile.mkdtemp(prefix="hello-pyz-test-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


@pytest.fixture(scope="module")
def pyz(shared_dir: Path) -> Path:
    built = build(ROOT, shared_dir / "hello.pyz")
    built.chmod(0o755)
    return built


@pytest.fixture(scope="module")
def shared_certs(shared_dir: Path) -> Certs:
    certs = make_certs(shared_dir / "certs")
    (shared_dir / "certs").chmod(0o755)
    for file in (certs.certfile, certs.keyfile):
        file.chmod(0o644)  # a throwaway test key, readable by the unprivileged user
    return certs


def test_two_builds_of_one_commit_in_two_places_are_identical(tmp_path: Path) -> None:
    digests = []
    for name in ("first", "second-elsewhere"):
        checkout = tmp_path / name
        subprocess.run(["git", "clone", "-q", str(ROOT), str(checkout)], check=True)
        built = build(checkout, checkout / "dist" / "hello.pyz")
        digests.append(hashlib.sha256(built.read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_size_is_small(pyz: Path) -> None:
    assert pyz.stat().st_size <= 5 * 1024 * 1024


def assert_serves_over_http2(server: HelloProcess, certs: Certs) -> None:
    with httpx.Client(http2=True, verify=certs.client_context()) as client:
        index = client.get(server.url + "/")
        legacy = client.get(server.url + "/legacy/")
    assert index.http_version == "HTTP/2" and legacy.http_version == "HTTP/2"
    assert index.content == (ROOT / "static" / "index.html").read_bytes()
    assert "Hello world, I am Flask!" in legacy.text


def tls_args(certs: Certs) -> list[str]:
    return [
        "--bind",
        "127.0.0.1:0",
        *certs.flags(),
    ]


def test_serves_tls_and_http2_on_a_bare_interpreter(pyz: Path, shared_certs: Certs) -> None:
    server = HelloProcess(
        tls_args(shared_certs), command=[BARE_PYTHON, str(pyz)], env={"PATH": BARE_PATH}
    )
    try:
        assert_serves_over_http2(server, shared_certs)
    finally:
        assert server.stop() == 0


def _private_roots() -> set[Path]:
    tmp = Path(tempfile.gettempdir())
    return {path for path in tmp.glob("hello-pyz-*") if path.stat().st_uid == NOBODY}


def test_serves_as_an_unprivileged_user_without_a_home(pyz: Path, shared_certs: Certs) -> None:
    before = _private_roots()
    command = [
        "setpriv",
        f"--reuid={NOBODY}",
        f"--regid={NOBODY}",
        "--clear-groups",
        BARE_PYTHON,
        str(pyz),
    ]
    server = HelloProcess(
        tls_args(shared_certs), command=command, env={"PATH": BARE_PATH, "HOME": "/nonexistent"}
    )
    try:
        assert_serves_over_http2(server, shared_certs)
        during = _private_roots() - before
        assert len(during) == 1  # a private extraction, not a shared or predictable path
        (private,) = during
        assert private.stat().st_mode & 0o777 == 0o700
    finally:
        assert server.stop() == 0
    assert not private.exists()  # removed when the process exited
    assert not Path("/nonexistent").exists()


def test_old_extractions_are_removed(pyz: Path, tmp_path: Path) -> None:
    root = tmp_path / ".shiv"
    root.mkdir()
    for age, name in ((300, "older"), (200, "old")):
        stale = root / f"hello.pyz_{name}"
        (stale / "site-packages").mkdir(parents=True)
        (root / f".hello.pyz_{name}_lock").touch()
        then = time.time() - age
        os.utime(stale, (then, then))
    done = subprocess.run(
        [BARE_PYTHON, str(pyz), "--version"],
        capture_output=True,
        text=True,
        env={"PATH": BARE_PATH, "HOME": str(tmp_path)},
        check=True,
    )
    assert done.stdout.startswith("hello ")
    left = sorted(path.name for path in root.iterdir() if not path.name.startswith("."))
    assert len(left) == 2 and "hello.pyz_old" in left  # the current build and the newest other
    assert not (root / "hello.pyz_older").exists()
    assert not (root / ".hello.pyz_older_lock").exists()


def test_check_from_the_pyz(pyz: Path, shared_certs: Certs) -> None:
    done = subprocess.run(
        [
            BARE_PYTHON,
            str(pyz),
            "--check",
            *shared_certs.flags(),
        ],
        capture_output=True,
        text=True,
        env={"PATH": BARE_PATH},
    )
    assert done.returncode == 0, done.stderr
    index_size = len((ROOT / "static" / "index.html").read_bytes())
    lines = done.stdout.splitlines()
    assert lines[0] == f"tls: {shared_certs.certfile} and {shared_certs.keyfile} load and match"
    assert lines[1] == f"GET / 200 ({index_size} bytes)"
    assert lines[2].startswith("GET /legacy/ 200 (")
    assert len(lines) == 3


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        (["--loop", "uvloop"], "hello: error: --loop uvloop: uvloop is not installed here"),
        (
            ["--acme-domain", "example.org", "--insecure-bind", "127.0.0.1:0"],
            "hello: error: --acme-domain example.org: ACME needs the acme extra",
        ),
    ],
)
def test_check_from_the_pyz_refuses_what_its_start_refuses(
    pyz: Path, flags: list[str], error: str, tmp_path: Path
) -> None:
    """The pyz has neither uvloop nor acme: --check exits 2 with a start's own line."""
    args = [*flags, "--bind", "127.0.0.1:0", "--state-dir", str(tmp_path)]
    env = {"PATH": BARE_PATH}
    runs = [
        subprocess.run(
            [BARE_PYTHON, str(pyz), *extra, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        for extra in ([], ["--check"])
    ]
    for done in runs:
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(error) and done.stderr.count("\n") == 1, done.stderr
    assert runs[0].stderr == runs[1].stderr


def test_mounts_apps_from_pythonpath(pyz: Path) -> None:
    mounted = ROOT / "tests" / "mounted"
    server = HelloProcess(
        ["--bind", "127.0.0.1:0", "--pythonpath", str(mounted), "--mount", "/raw=raw_asgi:app"],
        command=[BARE_PYTHON, str(pyz)],
        env={"PATH": BARE_PATH},
    )
    try:
        with httpx.Client() as client:
            body = client.get(server.url + "/raw/x").json()
        assert body == {"framework": "asgi", "prefix": "/raw", "lifespan": ["startup"]}
    finally:
        assert server.stop() == 0
