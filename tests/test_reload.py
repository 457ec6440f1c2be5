"""Certificates replaced on disk reach new connections: on SIGHUP and by themselves."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Certs, clean_environ, make_certs
from tests.h2client import host_port
from tests.support import HelloProcess
from tests.test_server import _handshake


@pytest.fixture
def pairs(tmp_path: Path) -> tuple[Certs, Certs, Path]:
    """An old and a new pair from different CAs, and a live directory serving the old one."""
    old, new = make_certs(tmp_path / "old"), make_certs(tmp_path / "new")
    live = tmp_path / "live"
    live.mkdir()
    install(old, live)
    return old, new, live


def install(certs: Certs, live: Path, *, key: Path | None = None) -> None:
    """Put a pair in place the way renewal tools do: a new file renamed over the old one."""
    for source, name in ((certs.certfile, "cert.pem"), (key or certs.keyfile, "key.pem")):
        shutil.copy(source, live / f".{name}.tmp")
        (live / f".{name}.tmp").replace(live / name)


def served_certificate(url: str, old: Certs, new: Certs) -> bytes:
    context = ssl.create_default_context(cafile=str(old.ca_file))
    context.load_verify_locations(cafile=str(new.ca_file))
    with _handshake(url, context) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def der_of(certs: Certs) -> bytes:
    return ssl.PEM_cert_to_DER_cert(certs.certfile.read_text())


def start(live: Path, *extra: str) -> HelloProcess:
    flags = ["--certfile", str(live / "cert.pem"), "--keyfile", str(live / "key.pem")]
    return HelloProcess(["--bind", "127.0.0.1:0", *flags, *extra], env=clean_environ())


@pytest.fixture
def server(pairs: tuple[Certs, Certs, Path]) -> Iterator[HelloProcess]:
    process = start(pairs[2])
    try:
        yield process
    finally:
        process.kill()


def test_sighup_swaps_in_the_new_certificate(
    server: HelloProcess, pairs: tuple[Certs, Certs, Path]
) -> None:
    old, new, live = pairs
    assert served_certificate(server.url, old, new) == der_of(old)
    install(new, live)
    server.signal(signal.SIGHUP)
    server.wait_for_output("certificate reloaded (SIGHUP)")  # logged once it is current
    assert served_certificate(server.url, old, new) == der_of(new)
    assert server.stop() == 0


def test_an_invalid_replacement_is_refused_and_the_old_one_kept(
    server: HelloProcess, pairs: tuple[Certs, Certs, Path]
) -> None:
    old, new, live = pairs
    install(new, live, key=old.keyfile)  # the new certificate with the old key: mismatched
    server.signal(signal.SIGHUP)
    server.wait_for_output("certificate not reloaded")
    assert "does not match" in server.stderr and "still serving the previous one" in server.stderr
    assert served_certificate(server.url, old, new) == der_of(old)
    assert server.stop() == 0


def test_files_changed_on_disk_are_picked_up_without_a_signal(
    server: HelloProcess, pairs: tuple[Certs, Certs, Path]
) -> None:
    old, new, live = pairs
    install(new, live)
    server.wait_for_output("certificate reloaded (the files changed)")
    assert served_certificate(server.url, old, new) == der_of(new)
    assert server.stop() == 0


def test_sighup_replaces_every_worker(pairs: tuple[Certs, Certs, Path]) -> None:
    old, new, live = pairs
    server = start(live, "--workers", "2")
    try:
        server.wait_for_output("Running on", count=2)
        install(new, live)
        server.signal(signal.SIGHUP)
        server.wait_for_output("SIGHUP: started 2 workers with re-read settings")
        server.wait_for_output("SIGTERM: shutting down", count=2)  # the old ones
        server.wait_for_output("Running on", count=4)  # the new ones listen
        for _ in range(10):  # whichever worker accepts, it serves the new certificate
            assert served_certificate(server.url, old, new) == der_of(new)
        assert server.stop() == 0
    finally:
        server.kill()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_handshake_under_way_when_its_worker_is_replaced_is_finished(
    pairs: tuple[Certs, Certs, Path], loop: str
) -> None:
    """A client that holds back its TLS Finished across a SIGHUP: the old worker that
    accepted the connection waits for the handshake, then answers the request sent with it.
    It used to exit under the handshake, and the client got nothing."""
    old, _, live = pairs
    server = start(live, "--workers", "2", "--loop", loop)
    try:
        server.wait_for_output("Running on", count=2)
        context = ssl.create_default_context(cafile=str(old.ca_file))
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
        with socket.create_connection(host_port(server), timeout=10) as sock:
            while True:  # ClientHello out, the server's flight in, until only Finished is due
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    sock.sendall(outgoing.read())
                    incoming.write(sock.recv(65536))
            finished = outgoing.read()
            server.signal(signal.SIGHUP)
            server.wait_for_output("waiting for TLS handshakes under way (1)")
            tls.write(b"GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            sock.sendall(finished + outgoing.read())
            response = b""
            while not response.endswith(b"</html>") and (chunk := sock.recv(65536)):
                incoming.write(chunk)
                with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                    while piece := tls.read(65536):
                        response += piece
            assert response.startswith(b"HTTP/1.1 200 "), response[:200]
            with contextlib.suppress(ssl.SSLWantReadError):
                tls.unwrap()  # close_notify, which the worker waits for before it exits
            sock.sendall(outgoing.read())
        assert server.stop() == 0
    finally:
        server.kill()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_client_gone_mid_handshake_does_not_hold_its_worker(
    pairs: tuple[Certs, Certs, Path], loop: str
) -> None:
    """A client that sent its ClientHello and left: the old workers exit at once after a
    SIGHUP, not at the end of the graceful timeout. (asyncio's TLS transport keeps such a
    handshake's objects in a reference cycle.)"""
    _, _, live = pairs
    server = start(live, "--workers", "2", "--graceful-timeout", "60", "--loop", loop)
    try:
        server.wait_for_output("Running on", count=2)
        tls = ssl.create_default_context().wrap_bio(
            ssl.MemoryBIO(), outgoing := ssl.MemoryBIO(), server_hostname="localhost"
        )
        with contextlib.suppress(ssl.SSLWantReadError):
            tls.do_handshake()
        with socket.create_connection(host_port(server), timeout=10) as sock:
            sock.sendall(outgoing.read())  # the ClientHello
            sock.recv(65536)  # the server's flight: the handshake is under way
        server.signal(signal.SIGHUP)
        server.wait_for_output("finished (exit code 0)", count=2, timeout=20)
        assert server.stop() == 0
    finally:
        server.kill()
