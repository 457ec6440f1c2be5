"""``hello APP``: the user's own app at the root, with real Django, Flask, Starlette and Quart
projects, over HTTP/1.1, h2c and HTTP/2 over TLS; its probes; bad APPs."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    RejectConnection,
    Request,
    TextMessage,
)

from tests.conftest import HTTP2_ENGINES, Certs, clean_environ
from tests.h2client import host_port, websocket_over_http2
from tests.projects import csrf_token, make_django_project
from tests.support import HelloProcess, run_hello

APPS = Path(__file__).parent / "apps"
MOUNTED = Path(__file__).parent / "mounted"

ROOT_APPS = {
    "flask": "flask_root:app",
    "starlette": "starlette_root:app",
    "quart": "quart_root:create_app()",
}
TRANSPORTS = ["http/1.1", "h2c", "h2+tls"]


def client_for(transport: str, certs: Certs) -> httpx.Client:
    if transport == "h2+tls":
        return httpx.Client(http2=True, verify=certs.client_context())
    return httpx.Client(http1=transport == "http/1.1", http2=transport == "h2c")


def expected_version(transport: str) -> str:
    return "HTTP/1.1" if transport == "http/1.1" else "HTTP/2"


@pytest.fixture(scope="module")
def root_server(certs: Certs) -> Iterator[Callable[[str, bool], HelloProcess]]:
    """hello serving a framework's app as its APP, plain or over TLS: started once each."""
    started: dict[tuple[str, bool], HelloProcess] = {}

    def get(framework: str, tls: bool) -> HelloProcess:
        if (framework, tls) not in started:
            args = ["--bind", "127.0.0.1:0", *(certs.flags() if tls else []), ROOT_APPS[framework]]
            started[framework, tls] = HelloProcess(args, env=clean_environ(), cwd=APPS)
        return started[framework, tls]

    try:
        yield get
    finally:
        for server in started.values():
            assert server.stop() == 0


@pytest.mark.parametrize("framework", list(ROOT_APPS))
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_each_framework_owns_the_root(
    root_server: Callable[[str, bool], HelloProcess],
    certs: Certs,
    framework: str,
    transport: str,
) -> None:
    server = root_server(framework, transport == "h2+tls")
    with client_for(transport, certs) as client:
        index = client.get(server.url + "/")
        echo = client.post(server.url + "/echo", content=b"x" * 300_000)
        bundled = [client.get(server.url + path).status_code for path in ("/legacy/", "/hello")]
        probe = client.get(server.url + "/healthz")
    assert index.http_version == expected_version(transport)
    assert index.status_code == 200
    body = index.json()
    assert body["framework"] == framework
    assert (body["url"], body["root"]) == ("/", "")  # no SCRIPT_NAME, no root_path
    if framework != "flask":
        assert body["lifespan"] == ["startup"]
    assert echo.json() == {"size": 300_000}
    assert bundled == [404, 404]  # the bundled site is not served beside an APP
    assert probe.status_code == 404  # the app's own answer: hello's probe is not public


def test_quart_websocket_at_the_root(root_server: Callable[[str, bool], HelloProcess]) -> None:
    assert websocket_echo(root_server("quart", False), "/ws", "hi") == "echo: hi"


@pytest.mark.parametrize("engine", HTTP2_ENGINES)
def test_quart_websocket_over_http2(certs: Certs, engine: str) -> None:
    """RFC 8441 (extended CONNECT) to the user's Quart app over TLS, on each HTTP/2 engine."""
    args = ["--bind", "127.0.0.1:0", *certs.flags(), "--http2-engine", engine]
    server = HelloProcess([*args, ROOT_APPS["quart"]], env=clean_environ(), cwd=APPS)
    try:
        replies = websocket_over_http2(server, certs, "/ws", ["one", "two", "three"])
        assert replies == ["echo: one", "echo: two", "echo: three"]
        assert server.stop() == 0
        assert "Traceback" not in server.stderr, server.stderr
    finally:
        server.kill()


def websocket_echo(server: HelloProcess, path: str, text: str) -> str:
    """One text message over a WebSocket to ``path``; the server's reply."""
    connection = WSConnection(ConnectionType.CLIENT)
    with socket.create_connection(host_port(server), timeout=5) as sock:
        sock.sendall(connection.send(Request(host="localhost", target=path)))
        while True:
            connection.receive_data(sock.recv(65536) or None)
            for event in connection.events():
                if isinstance(event, AcceptConnection):
                    sock.sendall(connection.send(TextMessage(data=text)))
                elif isinstance(event, TextMessage):
                    sock.sendall(connection.send(CloseConnection(code=1000)))
                    return str(event.data)
                elif isinstance(event, RejectConnection | CloseConnection):
                    raise AssertionError(f"the WebSocket ended: {event}")


# --- a Django project, as django-admin makes it ---


@pytest.fixture(scope="module")
def django_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_django_project(tmp_path_factory.mktemp("django"))


@pytest.mark.parametrize(
    ("target", "tls"),
    [
        ("mysite.wsgi:application", False),
        ("mysite.wsgi:application", True),
        ("mysite.asgi:application", False),
    ],
)
def test_a_django_project_at_the_root(
    django_project: Path, certs: Certs, target: str, tls: bool
) -> None:
    static = f"/static={django_project / 'staticfiles'}"
    args = ["--bind", "127.0.0.1:0", "--static", static, *(certs.flags() if tls else []), target]
    server = HelloProcess(args, env=clean_environ(), cwd=django_project)
    try:
        with client_for("h2+tls" if tls else "http/1.1", certs) as client:
            login = client.get(server.url + "/admin/login/")
            css = client.get(server.url + "/static/admin/css/base.css")
            legacy = client.get(server.url + "/legacy/")
            posted = client.post(
                server.url + "/admin/login/",
                data={
                    "csrfmiddlewaretoken": csrf_token(login.text),
                    "username": "nobody",
                    "password": "wrong",
                },
                headers={"referer": server.url + "/admin/login/"},
            )
        assert login.status_code == 200
        assert login.http_version == ("HTTP/2" if tls else "HTTP/1.1")
        assert 'action="/admin/login/"' in login.text  # Django built its URLs for the root
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        assert legacy.status_code == 404 and "Flask" not in legacy.text  # Django's own 404
        assert posted.status_code == 200  # the form again, with its error: the session worked
        assert "Please enter the correct username and password" in posted.text
    finally:
        assert server.stop() == 0
    assert "Traceback" not in server.stderr


# --- where the APP comes from, and the probes ---


def test_app_from_the_environment_and_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "hello.toml"
    config.write_text('app = "raw_asgi:app"\n')
    from_file = HelloProcess(
        ["--bind", "127.0.0.1:0", "--config", str(config)], env=clean_environ(), cwd=MOUNTED
    )
    from_env = HelloProcess(
        ["--bind", "127.0.0.1:0"],
        env=clean_environ() | {"HELLO_APP": "bottle_site:app"},
        cwd=MOUNTED,
    )
    try:
        assert httpx.get(from_file.url + "/x").json()["framework"] == "asgi"
        assert httpx.get(from_env.url + "/hi").json()["framework"] == "bottle"
    finally:
        assert from_file.stop() == 0 and from_env.stop() == 0


def test_probes_never_shadow_the_app_unless_asked(tmp_path: Path) -> None:
    args = ["--bind", "127.0.0.1:0", "--metrics-bind", "127.0.0.1:0", "--shutdown-delay", "3"]
    server = HelloProcess(
        [*args, "--health-prefix", "/-", "raw_asgi:app"], env=clean_environ(), cwd=MOUNTED
    )
    try:
        (line,) = server.wait_for_output("Operations on http://")
        operations = line.split("Operations on ")[1].split(": ")[0]
        assert httpx.get(server.url + "/healthz").json()["framework"] == "asgi"  # the app's
        assert httpx.get(server.url + "/-/healthz").text == "ok\n"
        assert httpx.get(server.url + "/-/readyz").text == "ready\n"
        assert httpx.get(operations + "/readyz").text == "ready\n"
        server.signal(15)
        server.wait_for_output("shutting down")
        assert httpx.get(operations + "/readyz").status_code == 503
        assert httpx.get(server.url + "/-/readyz").status_code == 503  # still accepting
        assert httpx.get(server.url + "/-/healthz").status_code == 200
    finally:
        assert server.wait(15) == 0


@pytest.mark.parametrize(
    ("app", "message"),
    [
        ("nosuchmodule:app", "APP nosuchmodule:app: no module named 'nosuchmodule'"),
        ("broken_root:missing", "module 'broken_root' has no attribute 'missing'"),
        ("broken_root:not_callable", "not_callable is a int, not a WSGI or ASGI app"),
        (
            "broken_root:factory_that_raises()",
            "calling 'broken_root:factory_that_raises()' failed with RuntimeError: the "
            "database is not configured",
        ),
        ("broken_root:factory_of_nothing()", "factory_of_nothing() returned a NoneType, not a"),
        ("broken_root", "'broken_root' is not MODULE:ATTR or MODULE:FACTORY()"),
    ],
)
def test_a_bad_app_is_one_line_and_exit_2(app: str, message: str) -> None:
    done = run_hello(["--bind", "127.0.0.1:0", app], env=clean_environ(), cwd=APPS)
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("hello: error: ") and message in last, done.stderr


def test_check_with_an_app(tmp_path: Path) -> None:
    done = run_hello(["--check", "starlette_root:app"], env=clean_environ(), cwd=APPS)
    assert done.returncode == 0, done.stderr
    assert "GET / 200" in done.stdout and "/legacy/" not in done.stdout
