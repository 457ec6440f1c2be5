"""The command line: parse-only checks, and every configuration error as a real process."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from hello import __version__, cli
from hello.asgi_types import ASGIApp, Receive, Scope, Send
from hello.errors import ConfigError
from hello.server import check
from tests.conftest import Certs, clean_environ, make_certs
from tests.support import run_hello


def test_flags_become_settings() -> None:
    parsed = cli.parse(
        [
            "--bind",
            "127.0.0.1:1",
            "--bind",
            "unix:/run/h.sock",
            "--workers",
            "3",
            "--access-log",
            "-",
        ],
        {},
    )
    assert parsed.bind == ("127.0.0.1:1", "unix:/run/h.sock")
    assert parsed.workers == 3
    assert parsed.access_log == "-"
    assert parsed.source("workers") == "--workers"


def test_flags_win_over_the_environment() -> None:
    parsed = cli.parse(["--workers", "2"], {"HELLO_WORKERS": "5", "HELLO_LOG_LEVEL": "error"})
    assert parsed.workers == 2
    assert parsed.log_level == "error"


def test_unknown_flag_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unrecognized arguments: --keyfil"):
        cli.parse(["--keyfil", "k.pem"], {})


def test_every_setting_has_a_flag() -> None:
    help_text = cli.build_parser().format_help()
    for flag in (
        "--bind",
        "--certfile",
        "--keyfile",
        "--workers",
        "--access-log",
        "--config",
        "--version",
        "--help",
        "--graceful-timeout",
        "--shutdown-delay",
    ):
        assert flag in help_text


def test_version_and_help_exit_zero() -> None:
    version = run_hello(["--version"], env=clean_environ())
    assert version.returncode == 0
    import httptools
    import ngh2

    assert version.stdout.splitlines()[:3] == [
        f"hello {__version__}",
        f"HTTP/1.1: httptools {httptools.__version__}",
        f"HTTP/2: ngh2 {ngh2.__version__}",
    ]
    assert version.stdout.splitlines()[3].startswith("HTTP/3: aioquic ")
    shown = run_hello(["--help"], env=clean_environ())
    assert shown.returncode == 0
    assert "--certfile" in shown.stdout


def run_with_pair(certfile: Path, keyfile: Path) -> tuple[int, str]:
    """hello with this certificate and key: its exit code and standard error."""
    args = ["--bind", "127.0.0.1:0", "--certfile", str(certfile), "--keyfile", str(keyfile)]
    done = run_hello(args, env=clean_environ())
    return done.returncode, done.stderr


def assert_one_line_error(stderr: str, *expected: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("hello: error: ")
    assert "Traceback" not in stderr
    for text in expected:
        assert text in lines[0], lines[0]


def test_certfile_without_keyfile(certs: Certs) -> None:
    done = run_hello(
        ["--bind", "127.0.0.1:0", "--certfile", str(certs.certfile)], env=clean_environ()
    )
    assert done.returncode == 2
    assert_one_line_error(done.stderr, "--certfile", "keyfile is not", "--keyfile")


def test_keyfile_from_environment_without_certfile(certs: Certs) -> None:
    env = clean_environ() | {"HELLO_KEYFILE": str(certs.keyfile)}
    done = run_hello(["--bind", "127.0.0.1:0"], env=env)
    assert done.returncode == 2
    assert_one_line_error(done.stderr, f"HELLO_KEYFILE={certs.keyfile}", "certfile is not")


@pytest.mark.parametrize(
    ("pair", "expected"),
    [
        (("missing", "key"), ("cannot read --certfile {missing}", "No such file")),
        (("cert", "directory"), ("cannot read --keyfile {directory}", "Is a directory")),
        (("cert", "other_key"), ("--keyfile {other_key} does not match --certfile {cert}",)),
        (("key", "key"), ("--certfile {key} holds no PEM certificate",)),
        (("cert", "cert"), ("--keyfile {cert} is not a usable PEM",)),
    ],
)
def test_bad_certificate_pairs(
    certs: Certs, tmp_path: Path, pair: tuple[str, str], expected: tuple[str, ...]
) -> None:
    files = {
        "cert": certs.certfile,
        "key": certs.keyfile,
        "missing": tmp_path / "nope.pem",
        "directory": tmp_path,
        "other_key": make_certs(tmp_path / "other").keyfile,
    }
    code, stderr = run_with_pair(files[pair[0]], files[pair[1]])
    assert code == 2
    assert_one_line_error(stderr, *(text.format(**files) for text in expected))


@pytest.mark.parametrize("bind", ["8443", "localhost", "::1:8000", "host:70000"])
def test_malformed_bind(bind: str) -> None:
    done = run_hello(["--bind", bind], env=clean_environ())
    assert done.returncode == 2
    assert_one_line_error(done.stderr, f"--bind {bind!r}")


def test_port_in_use_is_a_startup_failure_and_nothing_stays_open() -> None:
    with socket.socket() as taken, socket.socket() as spare:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        spare.bind(("127.0.0.1", 0))
        free_port = spare.getsockname()[1]
        spare.close()  # a port nothing listens on, for the bind that comes first
        busy = f"127.0.0.1:{taken.getsockname()[1]}"
        done = run_hello(["--bind", f"127.0.0.1:{free_port}", "--bind", busy], env=clean_environ())
    assert done.returncode == 1
    assert_one_line_error(done.stderr, f"cannot listen on {busy} (--bind)", "in use")
    assert "Running on" not in done.stdout + done.stderr


def test_bad_environment_value() -> None:
    done = run_hello([], env=clean_environ() | {"HELLO_WORKERS": "many"})
    assert done.returncode == 2
    assert_one_line_error(done.stderr, "HELLO_WORKERS 'many'", "whole number")


def test_unknown_key_in_config_file(tmp_path: Path) -> None:
    config = tmp_path / "hello.toml"
    config.write_text('bind = "127.0.0.1:0"\ncertfil = "x.pem"\n')
    done = run_hello(["--config", str(config)], env=clean_environ())
    assert done.returncode == 2
    assert_one_line_error(done.stderr, "unknown key 'certfil'", str(config))


def test_bad_flag_value_and_unknown_flag() -> None:
    for args, text in ((["--workers", "0"], "--workers '0'"), (["--nope"], "--nope")):
        done = run_hello(args, env=clean_environ())
        assert done.returncode == 2
        assert_one_line_error(done.stderr, text)


def test_check_requests_the_pages_in_process(certs: Certs) -> None:
    done = run_hello(
        ["--check", *certs.flags()],
        env=clean_environ(),
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("tls: ")
    assert lines[1].startswith("GET / 200 (") and lines[2].startswith("GET /legacy/ 200 (")


def with_lifespan(answer: Callable[[Receive, Send], Awaitable[None]]) -> ASGIApp:
    """An app whose lifespan starts and stops at once, and which answers requests with
    ``answer``."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await answer(receive, send)

    return app


def test_check_fails_when_a_page_fails() -> None:
    async def broken(receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b"no"})

    lines: list[str] = []
    good = check.SITE_PATHS, lambda status: status == 200
    assert asyncio.run(check._check(with_lifespan(broken), *good, lines.append)) is False
    assert lines == ["GET / 500 (2 bytes)", "GET /legacy/ 500 (2 bytes)"]


def test_check_gives_an_app_watching_for_the_disconnect_no_more_requests() -> None:
    """Like the WSGI bridge streaming a response: after the request, receive() waits (a
    request again at once made the watcher spin, and --check never ended)."""
    received: list[str] = []

    async def watching(receive: Receive, send: Send) -> None:
        received.append((await receive())["type"])
        started = asyncio.Event()

        async def watch() -> None:
            started.set()
            while len(received) < 100:  # bounded, so a spinning receive() fails, not hangs
                received.append((await receive())["type"])
                if received[-1] == "http.disconnect":
                    return

        watcher = asyncio.ensure_future(watch())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"one,", "more_body": True})
        await started.wait()  # the watcher has run up to its first wait, inside receive()
        await send({"type": "http.response.body", "body": b"two"})
        await watcher

    lines: list[str] = []
    good = check.SITE_PATHS, lambda status: status == 200
    assert asyncio.run(check._check(with_lifespan(watching), *good, lines.append)) is True
    assert lines == ["GET / 200 (7 bytes)", "GET /legacy/ 200 (7 bytes)"]
    assert received == ["http.request", "http.disconnect"] * 2


@pytest.mark.parametrize("flag", ["--access-log", "--error-log"])
def test_log_files_that_cannot_be_opened(flag: str, tmp_path: Path) -> None:
    missing_dir = tmp_path / "absent" / "hello.log"
    done = run_hello(["--bind", "127.0.0.1:0", flag, str(missing_dir)], env=clean_environ())
    assert done.returncode == 2
    assert_one_line_error(done.stderr, f"{flag} '{missing_dir}'", "is not a directory")
    done = run_hello(["--bind", "127.0.0.1:0", flag, str(tmp_path)], env=clean_environ())
    assert done.returncode == 2
    assert_one_line_error(done.stderr, f"cannot open {flag} {tmp_path}", "Is a directory")


def test_loop_choice() -> None:
    assert cli.parse([], {}).loop == "auto"
    assert cli.parse(["--loop", "asyncio"], {}).loop == "asyncio"
    with pytest.raises(ConfigError, match="HELLO_LOOP.*expected one of auto, asyncio, uvloop"):
        cli.parse([], {"HELLO_LOOP": "trio"})


def test_uvloop_asked_for_but_missing(tmp_path: Path) -> None:
    # A uvloop that cannot be imported, first on the path: as if it were not installed.
    (tmp_path / "uvloop").mkdir()
    (tmp_path / "uvloop" / "__init__.py").write_text("raise ImportError('not here')\n")
    env = clean_environ() | {"PYTHONPATH": str(tmp_path)}
    done = run_hello(["--bind", "127.0.0.1:0", "--loop", "uvloop"], env=env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "hello: error: --loop uvloop: uvloop is not installed here; install hello with the uvloop "
        "extra (pip install '.[uvloop]' in its checkout) or use --loop asyncio"
    ]


@pytest.mark.parametrize(
    ("args", "missing", "error"),
    [
        (["--loop", "uvloop"], "uvloop", "--loop uvloop: uvloop is not installed here"),
        (
            ["--quic-bind", "127.0.0.1:0"],
            "aioquic",
            "--quic-bind 127.0.0.1:0: HTTP/3 needs aioquic",
        ),
        (
            ["--acme-domain", "example.org", "--insecure-bind", "127.0.0.1:0"],
            "acme",
            "--acme-domain example.org: ACME needs the acme extra",
        ),
        (["--self-signed"], "cryptography", "--self-signed: the local CA needs cryptography"),
        (["--reload"], "watchfiles", "--reload: it needs watchfiles"),
        (["--http2-engine", "ngh2"], "ngh2", "--http2-engine ngh2: "),
    ],
)
def test_check_refuses_what_a_start_refuses(
    args: list[str], missing: str, error: str, certs: Certs, tmp_path: Path
) -> None:
    """A library the flags need, made unimportable: a start and --check give the same line."""
    (tmp_path / missing).mkdir()
    (tmp_path / missing / "__init__.py").write_text("raise ImportError('not here')\n")
    env = clean_environ() | {"PYTHONPATH": str(tmp_path)}
    if "--quic-bind" in args:
        args = [*args, *certs.flags()]
    args = [*args, "--bind", "127.0.0.1:0", "--state-dir", str(tmp_path / "state")]
    started = run_hello(args, env=env)
    checked = run_hello(["--check", *args], env=env)
    assert started.returncode == checked.returncode == 2, started.stderr
    assert started.stderr == checked.stderr
    (line,) = checked.stderr.splitlines()
    assert line.startswith(f"hello: error: {error}"), line
    assert checked.stdout == ""
    assert not (tmp_path / "state").exists()  # --check writes nothing


def test_check_refuses_a_state_dir_that_a_start_cannot_write(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    args = ["--self-signed", "--state-dir", str(blocker / "state"), "--bind", "127.0.0.1:0"]
    started = run_hello(args, env=clean_environ())
    checked = run_hello(["--check", *args], env=clean_environ())
    assert started.returncode == checked.returncode == 2
    assert (
        started.stderr
        == checked.stderr
        == (f"hello: error: --state-dir {blocker / 'state'}: {blocker} is not a directory\n")
    )
