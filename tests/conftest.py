from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme

from hello.asgi_types import ASGIApp
from hello.config import ENV_PREFIX, load
from hello.ops.lifecycle import Lifecycle
from hello.stack.build import build_app
from tests.support import HelloProcess


@dataclass(frozen=True)
class Certs:
    """A CA and a server certificate for localhost, 127.0.0.1 and ::1, as files."""

    ca: trustme.CA
    ca_file: Path
    certfile: Path
    keyfile: Path

    def flags(self) -> list[str]:
        """The command-line flags that serve this pair."""
        return ["--certfile", str(self.certfile), "--keyfile", str(self.keyfile)]

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        return context


def make_certs(directory: Path, *names: str) -> Certs:
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    leaf = ca.issue_cert(*(names or ("localhost", "127.0.0.1", "::1")))
    ca_file = directory / "ca.pem"
    certfile = directory / "cert.pem"
    keyfile = directory / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    leaf.private_key_pem.write_to_path(str(keyfile))
    with certfile.open("wb") as out:
        for blob in leaf.cert_chain_pems:
            out.write(blob.bytes())
    return Certs(ca, ca_file, certfile, keyfile)


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def clean_environ() -> dict[str, str]:
    """This process's environment without any HELLO_* variable a developer may have set, nor
    a DJANGO_SETTINGS_MODULE, which would override the settings of the projects tests make."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(ENV_PREFIX) and k != "DJANGO_SETTINGS_MODULE"
    }


@pytest.fixture
def lifecycle() -> Lifecycle:
    return Lifecycle(started=True)


@pytest.fixture
def app(lifecycle: Lifecycle) -> ASGIApp:
    return build_app(load(), lifecycle)


def asgi_client(app: ASGIApp) -> httpx.AsyncClient:
    """An httpx client that calls ``app`` in-process (no lifespan, no sockets)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.fixture
async def client(app: ASGIApp) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as client:
        yield client


@pytest.fixture
def tls_server(certs: Certs) -> Iterator[HelloProcess]:
    server = HelloProcess(
        [
            "--bind",
            "127.0.0.1:0",
            *certs.flags(),
        ],
        env=clean_environ(),
    )
    try:
        yield server
    finally:
        server.kill()


HTTP2_ENGINES = ["ngh2", "h2"]  # libnghttp2, and Hypercorn's protocol on h2 (the fallback)


@pytest.fixture(scope="module", params=HTTP2_ENGINES)
def http2_engine(request: pytest.FixtureRequest) -> str:
    """Each HTTP/2 engine in turn: a test taking it runs on both."""
    engine: str = request.param
    return engine


@pytest.fixture
def h2_server(certs: Certs, http2_engine: str) -> Iterator[HelloProcess]:
    """``tls_server`` with each HTTP/2 engine in turn."""
    flags = ["--bind", "127.0.0.1:0", *certs.flags(), "--http2-engine", http2_engine]
    server = HelloProcess(flags, env=clean_environ())
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def plain_server() -> Iterator[HelloProcess]:
    server = HelloProcess(["--bind", "127.0.0.1:0"], env=clean_environ())
    try:
        yield server
    finally:
        server.kill()
