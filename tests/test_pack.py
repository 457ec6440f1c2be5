"""``hello pack``: a Django project made by django-admin, packed into one file with its
requirements, served by Debian's bare python3 as an unprivileged user."""

from __future__ import annotations

import hashlib
import importlib.metadata
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import clean_environ
from tests.projects import csrf_token, make_django_project
from tests.support import HelloProcess, run_hello
from tests.test_zipapp import BARE_PATH, BARE_PYTHON, NOBODY

pytestmark = pytest.mark.slow


def pack(project: Path, output: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "hello", "pack", "--output", str(output)]
    command += ["--requirement", str(project / "requirements.txt"), "mysite.wsgi:application"]
    return subprocess.run(command, cwd=project, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def shared() -> Iterator[Path]:
    """A directory the unprivileged user may read: the project and its packed file."""
    directory = Path(tempfile.mkdtemp(prefix="hello-pack-test-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


@pytest.fixture(scope="module")
def project(shared: Path) -> Path:
    directory = make_django_project(shared / "project")
    django = importlib.metadata.version("django")
    (directory / "requirements.txt").write_text(f"Django=={django}\n")
    subprocess.run(["chmod", "-R", "a+rX", str(shared)], check=True)
    return directory


@pytest.fixture(scope="module")
def packed(project: Path, shared: Path) -> Path:
    output = shared / "mysite.pyz"
    done = pack(project, output)
    assert done.returncode == 0, done.stderr
    assert "serving mysite.wsgi:application" in done.stdout
    return output


def test_packed_django_serves_on_bare_python_as_nobody(packed: Path, project: Path) -> None:
    command = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    command += [BARE_PYTHON, str(packed)]
    static = f"/static={project / 'staticfiles'}"
    server = HelloProcess(
        ["--bind", "127.0.0.1:0", "--static", static],
        command=command,
        env={"PATH": BARE_PATH, "HOME": "/nonexistent"},
        cwd=Path("/"),
    )
    try:
        with httpx.Client() as client:
            login = client.get(server.url + "/admin/login/")
            css = client.get(server.url + "/static/admin/css/base.css")
            posted = client.post(
                server.url + "/admin/login/",
                data={"csrfmiddlewaretoken": csrf_token(login.text), "username": "x"},
                headers={"referer": server.url + "/admin/login/"},
            )
        assert login.status_code == 200 and 'action="/admin/login/"' in login.text
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        assert posted.status_code == 200 and "This field is required" in posted.text
    finally:
        assert server.stop() == 0
    assert "Traceback" not in server.stderr


def test_packing_again_gives_the_same_bytes(packed: Path, project: Path, shared: Path) -> None:
    again = shared / "again.pyz"
    done = pack(project, again)
    assert done.returncode == 0, done.stderr
    assert (
        hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(packed.read_bytes()).digest()
    )
    again.unlink()


def test_every_flag_of_hello_works_on_the_packed_file(packed: Path) -> None:
    done = subprocess.run(
        [BARE_PYTHON, str(packed), "--check"], capture_output=True, text=True, env=clean_environ()
    )
    assert done.returncode == 0, done.stderr
    assert "GET / 404" in done.stdout  # DEBUG is off and the project has no page at /
    other = subprocess.run(
        [BARE_PYTHON, str(packed), "--check", "nosuch:app"], capture_output=True, text=True
    )
    assert other.returncode == 2 and "APP nosuch:app: no module named 'nosuch'" in other.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--output", "x.pyz", "nocolon"], "APP 'nocolon': 'nocolon' is not MODULE:ATTR"),
        (["--output", "x.pyz", "--source", "/nonexistent", "a:b"], "--source /nonexistent: not"),
        (["--output", "x.pyz", "-r", "/nonexistent.txt", "a:b"], "--requirement /nonexistent"),
        (["a:b"], "the following arguments are required: --output"),
    ],
)
def test_pack_mistakes_are_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    done = run_hello(["pack", *args], env=clean_environ(), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("hello pack: error: ") and message in done.stderr
    assert not (tmp_path / "x.pyz").exists()
