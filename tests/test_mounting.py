"""--mount and --pythonpath with real Django, Pyramid, Bottle, Starlette and a bare ASGI app."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from hello.config import load
from hello.errors import ConfigError
from hello.stack.imports import detect_kind
from tests.conftest import clean_environ
from tests.support import HelloProcess, run_hello

MOUNTED = Path(__file__).parent / "mounted"
MOUNTS = {
    "/dj": "djsite.wsgi:application",
    "/dja": "djsite.asgi:application",
    "/pyr": "pyramid_site:app",
    "/bottle": "bottle_site:app",
    "/star": "starlette_site:app",
    "/raw": "raw_asgi:app",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HelloProcess]:
    time_file = tmp_path_factory.mktemp("clock") / "time.txt"
    args = ["--bind", "127.0.0.1:0", "--pythonpath", str(MOUNTED), "--time-file", str(time_file)]
    args += ["--log-level", "debug"]  # each scheduled run is logged: tests wait on those lines
    for prefix, target in MOUNTS.items():
        args += ["--mount", f"{prefix}={target}"]
    process = HelloProcess(args, env=clean_environ())
    process.time_file = time_file  # type: ignore[attr-defined]
    try:
        yield process
    finally:
        assert process.stop() == 0


@pytest.mark.parametrize(
    ("prefix", "path", "framework", "url"),
    [
        ("/dj", "/dj/hi/", "django", "/dj/hi/"),
        ("/dja", "/dja/hi/", "django", "/dja/hi/"),
        ("/pyr", "/pyr/hi", "pyramid", "/pyr/hi"),
        ("/bottle", "/bottle/hi", "bottle", "/bottle/hi"),
        ("/star", "/star/hi", "starlette", "/star/hi"),
    ],
)
def test_each_framework_sees_its_prefix_and_builds_its_urls(
    server: HelloProcess, prefix: str, path: str, framework: str, url: str
) -> None:
    with httpx.Client(http1=False, http2=True) as client:  # h2c: every app behind HTTP/2 too
        response = client.get(server.url + path)
    assert response.status_code == 200
    body = response.json()
    assert body["framework"] == framework
    assert body["prefix"] == prefix
    assert body["url"] == url


def test_asgi_apps_see_their_lifespan(server: HelloProcess) -> None:
    with httpx.Client() as client:
        raw = client.get(server.url + "/raw/anything").json()
        star = client.get(server.url + "/star/hi").json()
    assert raw == {"framework": "asgi", "prefix": "/raw", "lifespan": ["startup"]}
    assert star["lifespan"] == ["startup"]


def test_own_routes_and_prefix_boundaries(server: HelloProcess) -> None:
    with httpx.Client() as client:
        assert "Hello world, I am Flask!" in client.get(server.url + "/legacy/").text
        assert client.get(server.url + "/").status_code == 200
        for path in ("/djx", "/djx/hi/", "/starx/hi", "/rawx"):
            assert client.get(server.url + path).status_code == 404, path


def test_time_changes_every_second_and_reaches_the_file(server: HelloProcess) -> None:
    with httpx.Client() as client:
        first = client.get(server.url + "/time")
        assert first.status_code == 200
        recorded = datetime.fromisoformat(first.text.strip())
        assert recorded.tzinfo is not None
        ran = "scheduled task Clock.record ran"
        server.wait_for_output(ran, count=server.count_output(ran) + 1, timeout=1.5)
        later = client.get(server.url + "/time").text
    assert datetime.fromisoformat(later.strip()) > recorded
    time_file: Path = server.time_file  # type: ignore[attr-defined]
    written = datetime.fromisoformat(time_file.read_text().strip())
    assert abs((written - recorded).total_seconds()) < 5


def test_time_file_is_written_by_one_worker_of_several(tmp_path: Path) -> None:
    time_file = tmp_path / "time.txt"
    server = HelloProcess(
        [
            "--bind",
            "127.0.0.1:0",
            "--workers",
            "2",
            "--time-file",
            str(time_file),
            "--log-level",
            "debug",
        ],
        env=clean_environ(),
    )
    try:
        writes = server.wait_for_output("scheduled task Clock.write ran", count=2)
        assert time_file.exists()
        writers = {line.split("] [")[1] for line in writes}  # the pid field of the log line
        assert len(writers) == 1
        with httpx.Client() as client:
            for _ in range(4):
                assert client.get(server.url + "/time").status_code == 200
    finally:
        assert server.stop() == 0
    leftovers = [path.name for path in tmp_path.iterdir() if path.name != "time.txt"]
    assert leftovers == []  # every temporary file was renamed into place


def mount_error(*mount: str) -> str:
    done = run_hello(
        [
            "--bind",
            "127.0.0.1:0",
            "--pythonpath",
            str(MOUNTED),
            *(arg for spec in mount for arg in ("--mount", spec)),
        ],
        env=clean_environ(),
    )
    assert done.returncode == 2, done.stderr
    assert "Running on" not in done.stderr
    return done.stderr


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "/x=no_such_module:app",
            "--mount /x=no_such_module:app: no module named 'no_such_module'",
        ),
        ("/x=raw_asgi:nope", "module 'raw_asgi' has no attribute 'nope'"),
        ("/x=not_an_app:app", "not_an_app:app is a int, not a WSGI or ASGI app"),
        ("x=raw_asgi:app", "prefix 'x' must start with /"),
        ("raw_asgi:app", "expected PREFIX=MODULE:ATTR"),
        ("/x=raw_asgi", "is not MODULE:ATTR"),
        ("/legacy=raw_asgi:app", "/legacy is already served by hello itself"),
        ("/time=raw_asgi:app", "/time is already served by hello itself"),
    ],
)
def test_mount_errors_are_one_line(spec: str, message: str) -> None:
    stderr = mount_error(spec)
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    assert stderr.startswith("hello: error: ") and message in stderr, stderr


def test_duplicate_prefixes_are_refused() -> None:
    stderr = mount_error("/x=raw_asgi:app", "/x=starlette_site:app")
    assert "prefix /x is given twice" in stderr


def test_a_failing_import_shows_the_users_traceback_then_ours() -> None:
    stderr = mount_error("/x=broken_site:app")
    traceback_part, _, ours = stderr.rstrip().rpartition("\n")
    assert traceback_part.startswith("Traceback (most recent call last):")
    assert "broken_site.py" in traceback_part and 'raise RuntimeError("the database' in (
        traceback_part
    )
    assert "hello/apps.py" not in traceback_part and "importlib" not in traceback_part
    assert ours == (
        "hello: error: --mount /x=broken_site:app: importing 'broken_site' failed with "
        "RuntimeError: the database URL is missing (its traceback is above)"
    )


def test_kind_detection_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    # Importing djsite.wsgi sets DJANGO_SETTINGS_MODULE unless it is set: set here, it is
    # undone after the test, so servers that later tests start do not inherit it.
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "djsite.settings")
    sys.path.insert(0, str(MOUNTED))
    try:
        import raw_asgi  # type: ignore[import-not-found]
        import starlette_site  # type: ignore[import-not-found]
        from djsite import wsgi  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(MOUNTED))
    assert detect_kind(raw_asgi.app) == "asgi"
    assert detect_kind(starlette_site.app) == "asgi"
    assert detect_kind(wsgi.application) == "wsgi"
    spec = load(flags={"mount": ["/a=wsgi:raw_asgi:app"]}).mount[0]
    assert (spec.prefix, spec.kind, spec.target) == ("/a", "wsgi", "raw_asgi:app")


def test_mount_tables_in_toml(tmp_path: Path) -> None:
    config = tmp_path / "hello.toml"
    config.write_text(
        '[[mount]]\nprefix = "/dj"\napp = "djsite.wsgi:application"\n\n'
        '[[mount]]\nprefix = "/raw"\napp = "raw_asgi:app"\nkind = "asgi"\n'
    )
    mounts = load(config_file=config).mount
    assert [str(m) for m in mounts] == ["/dj=djsite.wsgi:application", "/raw=asgi:raw_asgi:app"]
    config.write_text('[[mount]]\nprefix = "/dj"\nmodule = "x:y"\n')
    with pytest.raises(ConfigError, match=r"a \[\[mount\]\] table takes prefix, app"):
        load(config_file=config)
