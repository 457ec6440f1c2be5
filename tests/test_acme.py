"""Automatic HTTPS against Pebble, Let's Encrypt's own ACME test server, on loopback.

One Pebble serves the module. Its http-01 validations go to one plain-HTTP port, chosen free
at the start, which each hello here takes in turn with --insecure-bind.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from tests.conftest import clean_environ, make_certs
from tests.support import HelloProcess

pytestmark = pytest.mark.slow

ISSUED = "ACME: new certificate"
_DIRECTORY = re.compile(r"ACME directory available at: (\S+)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class Pebble:
    directory: str
    ca_bundle: Path  # trust for Pebble's own HTTPS
    roots: Path  # Pebble's issuing root: trust for what it issues
    http_port: int  # where it sends http-01 validations


@pytest.fixture(scope="module")
def pebble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    with run_pebble(tmp_path_factory.mktemp("pebble")) as running:
        yield running


@contextlib.contextmanager
def run_pebble(home: Path) -> Iterator[Pebble]:
    """Pebble on free loopback ports, its files in ``home``, until the block ends."""
    certs = make_certs(home / "tls", "127.0.0.1", "localhost")
    management, http_port = free_port(), free_port()
    config = {
        "pebble": {
            "listenAddress": f"127.0.0.1:{free_port()}",
            "managementListenAddress": f"127.0.0.1:{management}",
            "certificate": str(certs.certfile),
            "privateKey": str(certs.keyfile),
            "httpPort": http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    (home / "config.json").write_text(json.dumps(config))
    env = clean_environ() | {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
    server = HelloProcess(
        ["-config", str(home / "config.json")], command=["pebble"], env=env, ready=_DIRECTORY
    )
    try:
        directory = server.url
        roots = home / "roots.pem"
        roots.write_bytes(fetch_root(server, management, certs.ca_file))
        yield Pebble(directory, certs.ca_file, roots, http_port)
    finally:
        server.kill()


def fetch_root(pebble: HelloProcess, port: int, ca_file: Path) -> bytes:
    """Pebble's issuing root, from its management port, polled until that listens (Pebble
    logs the port before it listens on it)."""
    verify = ssl.create_default_context(cafile=str(ca_file))
    deadline = time.monotonic() + 20
    with httpx.Client(verify=verify) as client:
        while True:
            try:
                root = client.get(f"https://127.0.0.1:{port}/roots/0")
            except httpx.ConnectError:
                if time.monotonic() > deadline:
                    raise
                with contextlib.suppress(subprocess.TimeoutExpired):
                    pebble.process.wait(timeout=0.05)  # returns at once if Pebble died
                assert pebble.process.poll() is None, pebble.stderr
                continue
            root.raise_for_status()
            return root.content


def acme_flags(pebble: Pebble, state: Path, *extra: str) -> list[str]:
    return [
        "--bind", "127.0.0.1:0",
        "--insecure-bind", f"127.0.0.1:{pebble.http_port}",
        "--acme-domain", "localhost",
        "--acme-directory", pebble.directory,
        "--acme-ca-bundle", str(pebble.ca_bundle),
        "--state-dir", str(state),
        *extra,
    ]  # fmt: skip


def start(pebble: Pebble, state: Path, *extra: str) -> HelloProcess:
    return HelloProcess(acme_flags(pebble, state, *extra), env=clean_environ(), listeners=2)


def https_url(server: HelloProcess) -> str:
    url = next(url for url in server.urls if url.startswith("https://"))
    return url.replace("127.0.0.1", "localhost")


def served_certificate(server: HelloProcess, pebble: Pebble) -> x509.Certificate:
    """GET / over HTTP/2, trusting only Pebble's root; the certificate that was served."""
    context = ssl.create_default_context(cafile=str(pebble.roots))
    context.set_alpn_protocols(["h2", "http/1.1"])
    with httpx.Client(http2=True, verify=context) as client:
        response = client.get(https_url(server) + "/")
        assert response.status_code == 200 and response.http_version == "HTTP/2"
    host, port = https_url(server).removeprefix("https://").split(":")
    with (
        socket.create_connection((host, int(port))) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


@pytest.fixture(scope="module")
def issued(pebble: Pebble, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A state directory holding a certificate Pebble issued (hello stopped again)."""
    state = tmp_path_factory.mktemp("issued") / "state"
    server = start(pebble, state)
    try:
        server.wait_for_output(ISSUED, timeout=30)
        server.wait_for_output("certificate reloaded (a new ACME certificate)")
    finally:
        assert server.stop() == 0
    yield state


def copy_state(issued: Path, tmp_path: Path) -> Path:
    state = tmp_path / "state"
    shutil.copytree(issued, state)
    return state


def stored_serial(state: Path) -> int:
    return x509.load_pem_x509_certificate((state / "cert.pem").read_bytes()).serial_number


def test_issues_a_certificate_that_verifies_against_pebbles_root(
    pebble: Pebble, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    server = start(pebble, state)
    try:
        server.wait_for_output(ISSUED, timeout=30)
        server.wait_for_output("certificate reloaded (a new ACME certificate)")
        certificate = served_certificate(server, pebble)  # verified: chain and name
        assert certificate.serial_number == stored_serial(state)
        assert "Pebble Intermediate CA" in certificate.issuer.rfc4514_string()
    finally:
        assert server.stop() == 0


def test_state_directory_modes(issued: Path) -> None:
    assert stat.S_IMODE(issued.stat().st_mode) == 0o700
    for name in ("key.pem", "account.key"):
        assert stat.S_IMODE((issued / name).stat().st_mode) == 0o600
    for path in issued.rglob("*"):
        if path.suffix == ".key" or path.name == "key.pem":
            assert path.stat().st_mode & 0o077 == 0, path


def test_plain_http_redirects_with_path_and_query_and_answers_challenges(
    pebble: Pebble, issued: Path, tmp_path: Path
) -> None:
    state = copy_state(issued, tmp_path)
    (state / "challenges" / "tok_en-1").write_text("tok_en-1.thumbprint")
    server = start(pebble, state)
    try:
        plain = f"http://localhost:{pebble.http_port}"
        https = https_url(server)
        with httpx.Client() as client:
            moved = client.get(plain + "/some/page?x=1&y=%2F")
            answer = client.get(plain + "/.well-known/acme-challenge/tok_en-1")
            unknown = client.get(plain + "/.well-known/acme-challenge/other")
            climbing = client.get(plain + "/.well-known/acme-challenge/..%2Fkey.pem")
        assert moved.status_code == 308
        assert moved.headers["location"] == https + "/some/page?x=1&y=%2F"
        assert answer.status_code == 200 and answer.text == "tok_en-1.thumbprint"
        assert unknown.status_code == 404 and climbing.status_code == 404
    finally:
        assert server.stop() == 0


def test_a_restart_with_a_valid_certificate_orders_nothing(
    pebble: Pebble, issued: Path, tmp_path: Path
) -> None:
    state = copy_state(issued, tmp_path)
    before = stored_serial(state)
    server = start(pebble, state)
    try:
        server.wait_for_output("ACME: serving the stored certificate")
        server.wait_for_output("ACME: renewal due at")  # decided: nothing to order now
        assert served_certificate(server, pebble).serial_number == before
        assert server.count_output(ISSUED) == 0
    finally:
        assert server.stop() == 0
    assert stored_serial(state) == before


def test_renewal_swaps_the_new_certificate_in(pebble: Pebble, issued: Path, tmp_path: Path) -> None:
    state = copy_state(issued, tmp_path)
    before = stored_serial(state)
    # A window longer than the lifetime: renewal is due at once.
    server = start(pebble, state, "--acme-renew-days", "100000")
    try:
        server.wait_for_output(ISSUED, timeout=30)
        server.wait_for_output("certificate reloaded (a new ACME certificate)")
        renewed = served_certificate(server, pebble).serial_number
        assert renewed != before and renewed == stored_serial(state)
    finally:
        assert server.stop() == 0


def test_an_unreachable_ca_keeps_the_current_certificate_serving(
    pebble: Pebble, issued: Path, tmp_path: Path
) -> None:
    state = copy_state(issued, tmp_path)
    before = stored_serial(state)
    flags = acme_flags(pebble, state, "--acme-renew-days", "100000")
    flags[flags.index("--acme-directory") + 1] = f"https://127.0.0.1:{free_port()}/dir"
    server = HelloProcess(flags, env=clean_environ(), listeners=2)
    try:
        (failure,) = server.wait_for_output("ACME: no certificate for localhost", timeout=30)
        assert "still serving the current certificate, which expires in" in failure
        assert "next attempt in" in failure
        assert served_certificate(server, pebble).serial_number == before
    finally:
        assert server.stop() == 0
    assert stored_serial(state) == before


def test_a_corrupt_stored_certificate_is_replaced_not_served(
    pebble: Pebble, issued: Path, tmp_path: Path
) -> None:
    state = copy_state(issued, tmp_path)
    before = stored_serial(state)
    (state / "cert.pem").write_bytes((state / "cert.pem").read_bytes()[:300])  # cut short
    server = start(pebble, state)
    try:
        server.wait_for_output("the stored certificate in")
        server.wait_for_output(ISSUED, timeout=30)
        server.wait_for_output("certificate reloaded (a new ACME certificate)")
        assert served_certificate(server, pebble).serial_number == stored_serial(state) != before
    finally:
        assert server.stop() == 0


def test_with_several_workers_one_orders_and_all_serve_it(pebble: Pebble, tmp_path: Path) -> None:
    state = tmp_path / "state"
    server = start(pebble, state, "--workers", "3")
    try:
        server.wait_for_output(ISSUED, timeout=30)
        server.wait_for_output("certificate reloaded", count=3, timeout=10)
        serials = {served_certificate(server, pebble).serial_number for _ in range(6)}
        assert serials == {stored_serial(state)}
        assert server.count_output(ISSUED) == 1
    finally:
        assert server.stop() == 0


def test_sighup_reloads_the_stored_pair(pebble: Pebble, issued: Path, tmp_path: Path) -> None:
    state = copy_state(issued, tmp_path)
    server = start(pebble, state)
    try:
        server.wait_for_output("ACME: renewal due at")
        server.signal(signal.SIGHUP)
        server.wait_for_output("certificate reloaded (SIGHUP)")
        assert served_certificate(server, pebble).serial_number == stored_serial(state)
    finally:
        assert server.stop() == 0
