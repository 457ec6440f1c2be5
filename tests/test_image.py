"""The container image, built for real by scripts/image with buildah and run with buildah.

Its own container storage (vfs, in a temporary directory) keeps the build away from the
machine's images. The bases are built from Debian 13 packages (--local-bases): no registry.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Certs, make_certs
from tests.support import HelloProcess

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
NONROOT = 65532
SHELLS = {"sh", "bash", "dash", "ash", "zsh", "busybox"}
CERTS_IN_IMAGE = "/var/lib/hello/tls"
ENGINE_FILES = {"etc/hostname", "etc/hosts", "etc/resolv.conf"}  # buildah run writes these


@dataclass(frozen=True)
class Image:
    name: str
    env: dict[str, str]  # buildah's environment: the test's own storage

    def buildah(self, *args: str) -> str:
        done = subprocess.run(
            ["buildah", *args], env=self.env, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    def config(self) -> dict[str, Any]:
        inspected = json.loads(self.buildah("inspect", "--type", "image", self.name))
        config: dict[str, Any] = inspected["Docker"]["config"]
        return config


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    storage = Path(tempfile.mkdtemp(prefix="hello-image-test-"))
    conf = storage / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{storage}/graph"\nrunroot = "{storage}/run"\n'
    )
    env = os.environ | {"CONTAINERS_STORAGE_CONF": str(conf), "BUILDAH_ISOLATION": "chroot"}
    name = f"localhost/hello-test:{uuid.uuid4().hex[:8]}"
    try:
        built = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "image"), "--local-bases", "--tag", name],
            env=env,
            capture_output=True,
            text=True,
        )
        assert built.returncode == 0, built.stderr[-3000:]
        yield Image(name, env)
    finally:
        subprocess.run(["buildah", "rm", "--all"], env=env, capture_output=True)
        subprocess.run(["buildah", "rmi", "--all", "--force"], env=env, capture_output=True)
        shutil.rmtree(storage, ignore_errors=True)


@pytest.fixture
def container(image: Image) -> Iterator[str]:
    name = image.buildah("from", "--pull=never", image.name)
    try:
        yield name
    finally:
        image.buildah("rm", name)


@pytest.fixture(scope="module")
def image_certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A pair the image's user may read, as a mounted secret would be."""
    certs = make_certs(tmp_path_factory.mktemp("image-certs"))
    for path in (certs.certfile, certs.keyfile):
        os.chown(path, NONROOT, NONROOT)
    certs.certfile.parent.chmod(0o755)
    return certs


def _files(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and modification time."""
    found = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory) / name
            stat = path.lstat()
            found[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return found


def _descendant(pid: int, argv: list[str]) -> int:
    """The process under ``pid`` whose command line starts with ``argv``."""
    needle = b"\0".join(part.encode() for part in argv)
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it exited meanwhile
        parents[int(stat.parent.name)] = int(fields[1])
    for child, parent in parents.items():
        line = Path(f"/proc/{child}/cmdline")
        if parent == pid and line.exists() and line.read_bytes().startswith(needle):
            return child
    for child, parent in parents.items():
        if parent == pid:
            with contextlib.suppress(LookupError):
                return _descendant(child, argv)
    raise LookupError(f"no process under {pid} runs {needle!r}")


def test_image_settings(image: Image) -> None:
    config = image.config()
    assert config["User"] == f"{NONROOT}:{NONROOT}"
    assert config["Entrypoint"] == ["/usr/bin/python3", "/opt/hello/hello.pyz"]
    assert "--certfile" in config["Cmd"]
    assert set(config["ExposedPorts"]) == {"8443/tcp", "8443/udp", "8080/tcp"}
    assert "/var/lib/hello" in config["Volumes"]
    assert config["Healthcheck"]["Test"][-1] == "--check"


def test_image_holds_no_shell_and_python_runs_as_nonroot(image: Image, container: str) -> None:
    root = Path(image.buildah("mount", container))
    try:
        names = {Path(path).name for path in _files(root)}
        assert not names & SHELLS
        assert not (root / "usr/bin/apt").exists() and not (root / "usr/bin/dpkg").exists()
        assert (root / "opt/hello/hello.pyz").is_file()
        state = (root / "var/lib/hello").stat()
        assert (state.st_uid, state.st_gid) == (NONROOT, NONROOT)
    finally:
        image.buildah("umount", container)
    ids = image.buildah(
        "run",
        container,
        "--",
        "/usr/bin/python3",
        "-c",
        "import os; print(os.getuid(), os.getgid())",
    )
    assert ids == f"{NONROOT} {NONROOT}"


def test_image_serves_http2_over_tls_and_writes_nothing(
    image: Image, container: str, image_certs: Certs
) -> None:
    root = Path(image.buildah("mount", container))
    before = _files(root)
    mount = f"type=bind,src={image_certs.certfile.parent},dst={CERTS_IN_IMAGE},ro"
    flags = [
        "--bind", "127.0.0.1:0",
        "--certfile", f"{CERTS_IN_IMAGE}/cert.pem", "--keyfile", f"{CERTS_IN_IMAGE}/key.pem",
    ]  # fmt: skip
    entrypoint = image.config()["Entrypoint"]
    command = ["buildah", "run", "--mount", mount, container, "--", *entrypoint]
    server = HelloProcess(flags, command=command, env=image.env)
    try:
        with httpx.Client(http2=True, verify=image_certs.client_context()) as client:
            index = client.get(server.url + "/")
            legacy = client.get(server.url + "/legacy/")
        assert index.http_version == "HTTP/2" and index.status_code == 200
        assert index.content == (ROOT / "static" / "index.html").read_bytes()
        assert legacy.http_version == "HTTP/2" and legacy.status_code == 200
        assert "Hello world, I am Flask!" in legacy.text
    finally:
        # As a container engine stops a container: SIGTERM to hello itself (buildah run
        # would answer a SIGTERM of its own with SIGKILL).
        os.kill(_descendant(server.process.pid, entrypoint), signal.SIGTERM)
        code = server.wait(timeout=15)
    assert code == 0, server.stderr
    server.wait_for_output("shutting down")
    try:
        after = _files(root)
    finally:
        image.buildah("umount", container)
    assert {path: after.get(path) for path in before if after.get(path) != before[path]} == {}
    assert set(after) - set(before) - ENGINE_FILES == set()


def test_healthcheck_command_passes_in_the_image(image: Image, container: str) -> None:
    check = image.config()["Healthcheck"]["Test"][1:]
    assert "GET / 200" in image.buildah("run", container, "--", *check)
