"""--self-signed: local HTTPS in one step, from a CA hello makes in the state directory."""

from __future__ import annotations

import re
import ssl
import stat
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from hello.tls.local import LocalAuthority
from tests.conftest import clean_environ
from tests.support import HelloProcess, run_hello


def test_serves_https_and_http2_from_a_local_ca_and_reuses_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    args = ["--self-signed", "--state-dir", str(state), "--bind", "127.0.0.1:0"]
    local = state / "local"
    served: list[bytes] = []
    for start in ("a new local CA and certificate", "the stored local CA and certificate"):
        server = HelloProcess(args, env=clean_environ())
        try:
            assert server.url.startswith("https://")
            context = ssl.create_default_context(cafile=local / "ca.pem")  # the CA alone
            with httpx.Client(verify=context, http2=True) as client:
                response = client.get(server.url.replace("127.0.0.1", "localhost") + "/")
                again = client.get(server.url + "/hello")  # the address is named too
            assert response.status_code == again.status_code == 200
            assert response.http_version == "HTTP/2"
            assert "strict-transport-security" not in response.headers  # not for localhost
            assert f"--self-signed: serving {start} for localhost, 127.0.0.1, ::1" in server.stderr
            command = re.search(r"to trust it in Chromium and Chrome: (.*)", server.stderr)
            assert command and f"-i {local / 'ca.pem'}" in command[1]
            assert server.stop() == 0
        finally:
            server.kill()
        served.append((local / "cert.pem").read_bytes())
    assert served[0] == served[1]
    assert stat.S_IMODE(local.stat().st_mode) == 0o700
    for key in ("ca-key.pem", "key.pem"):
        assert stat.S_IMODE((local / key).stat().st_mode) == 0o600


def test_a_broken_certificate_is_issued_again_a_broken_ca_is_replaced_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    authority = LocalAuthority(tmp_path / "local")
    assert authority.ensure() == "a new local CA and certificate"
    ca = authority.ca_cert.read_bytes()
    authority.certfile.write_text("not a certificate\n")
    assert authority.ensure() == "a new certificate"
    assert authority.ensure() == "the stored local CA and certificate"
    assert authority.ca_cert.read_bytes() == ca
    authority.ca_key.write_text("not a key\n")
    assert authority.ensure() == "a new local CA and certificate"
    assert "browsers must be told to trust again" in caplog.text
    ca = authority.ca_cert.read_bytes()
    issued = x509.load_pem_x509_certificate(authority.certfile.read_bytes())
    issued.verify_directly_issued_by(x509.load_pem_x509_certificate(ca))
    names = issued.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(n.value) for n in names] == ["localhost", "127.0.0.1", "::1"]


def test_self_signed_with_a_certificate_is_refused(tmp_path: Path) -> None:
    done = run_hello(["--self-signed", "--certfile", str(tmp_path / "c.pem")], env=clean_environ())
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"hello: error: --self-signed and --certfile {tmp_path / 'c.pem'}: choose one "
        "source of the certificate"
    ]
