"""The plain-HTTP gate, the ACME settings and the certificate store, in-process."""

from __future__ import annotations

import datetime
import stat
from pathlib import Path

import httpx
import pytest
import trustme

from hello.asgi_types import Receive, Scope, Send
from hello.config import LETS_ENCRYPT, LETS_ENCRYPT_STAGING, load
from hello.errors import ConfigError
from hello.responses import send_text
from hello.stack.insecure import InsecureGate
from hello.tls.expiry import not_after
from hello.tls.store import CertificateStore
from tests.conftest import make_certs

LOCALHOST = frozenset({"localhost"})


async def site(scope: Scope, receive: Receive, send: Send) -> None:
    await send_text(send, 200, f"the site over {scope['scheme']}")


def gate_client(tmp_path: Path, https_port: int, scheme: str = "http") -> httpx.AsyncClient:
    gate = InsecureGate(site, tmp_path, https_port)
    transport = httpx.ASGITransport(app=gate)
    return httpx.AsyncClient(transport=transport, base_url=f"{scheme}://example.org:8080")


@pytest.mark.anyio
async def test_plain_http_is_redirected_with_path_and_query(tmp_path: Path) -> None:
    async with gate_client(tmp_path, 8443) as client:
        moved = await client.get("/a/b%20c?x=1&y=2")
        head = await client.head("/a")
        posted = await client.post("/form", content=b"data")
    assert moved.status_code == 308
    assert moved.headers["location"] == "https://example.org:8443/a/b%20c?x=1&y=2"
    assert head.status_code == 308 and head.content == b""
    assert posted.status_code == 308  # 308 keeps the method and body on the retry


@pytest.mark.anyio
async def test_port_443_is_left_out_of_the_redirect(tmp_path: Path) -> None:
    async with gate_client(tmp_path, 443) as client:
        moved = await client.get("/", headers={"host": "Example.ORG"})
    assert moved.headers["location"] == "https://example.org/"


@pytest.mark.anyio
async def test_a_bad_host_gets_400_not_a_redirect_elsewhere(tmp_path: Path) -> None:
    async with gate_client(tmp_path, 443) as client:
        bad = await client.get("/", headers={"host": "evil.org/@x"})
    assert bad.status_code == 400 and "location" not in bad.headers


@pytest.mark.anyio
async def test_challenges_are_answered_and_nothing_else_is_read(tmp_path: Path) -> None:
    (tmp_path / "abc_DEF-1").write_text("abc_DEF-1.key-authorization")
    (tmp_path.parent / "secret").write_text("not for you")
    async with gate_client(tmp_path, 443) as client:
        answer = await client.get("/.well-known/acme-challenge/abc_DEF-1")
        missing = await client.get("/.well-known/acme-challenge/nothing")
        climbing = await client.get("/.well-known/acme-challenge/..%2Fsecret")
    assert answer.status_code == 200 and answer.text == "abc_DEF-1.key-authorization"
    assert missing.status_code == 404 and climbing.status_code == 404


@pytest.mark.anyio
async def test_tls_requests_reach_the_site(tmp_path: Path) -> None:
    async with gate_client(tmp_path, 443, scheme="https") as client:
        response = await client.get("/")
    assert response.status_code == 200 and response.text == "the site over https\n"


ACME = {"acme_domain": ["example.org"], "insecure_bind": ["0.0.0.0:80"]}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({**ACME, "certfile": "c.pem", "keyfile": "k.pem"}, "choose one"),
        ({"acme_domain": ["example.org"]}, "needs --insecure-bind"),
        ({"insecure_bind": ["0.0.0.0:80"]}, "redirects to HTTPS, which needs"),
        ({**ACME, "acme_domain": ["*.example.org"]}, "wildcard names need the dns-01"),
        ({**ACME, "acme_domain": ["10.0.0.1"]}, "expected a DNS name"),
        ({**ACME, "acme_directory": "http://ca.test/dir"}, "expected an https:// directory"),
        ({**ACME, "acme_email": "nobody"}, "expected an e-mail address"),
        ({"acme_email": "a@example.org"}, "is only used with --acme-domain"),
    ],
)
def test_acme_settings_that_cannot_work(flags: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(flags=flags)


def test_acme_directory_shortcuts() -> None:
    staging = load(flags={**ACME, "acme_directory": "letsencrypt-staging"})
    assert staging.acme_directory == LETS_ENCRYPT_STAGING
    assert load(flags=ACME).acme_directory == LETS_ENCRYPT


def test_store_writes_keys_private_and_directory_0700(tmp_path: Path) -> None:
    store = CertificateStore(tmp_path / "state")
    store.prepare()
    store.save_temporary(LOCALHOST)
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.keyfile.stat().st_mode) == 0o600
    assert [p.name for p in store.directory.iterdir() if p.name.startswith(".")] == []


def test_store_serves_a_matching_pair_for_the_same_names(tmp_path: Path) -> None:
    store = CertificateStore(tmp_path / "state")
    store.prepare()
    made = store.save_temporary(LOCALHOST)
    loaded = store.load(LOCALHOST)
    assert loaded is not None and loaded.pem == made.pem and loaded.self_signed
    assert store.load(frozenset({"localhost", "example.org"})) is None  # other names


def test_store_refuses_a_cut_file_and_a_foreign_key(tmp_path: Path) -> None:
    store = CertificateStore(tmp_path / "state")
    store.prepare()
    store.save_temporary(LOCALHOST)
    good = store.certfile.read_bytes()
    store.certfile.write_bytes(good[: len(good) // 2])
    assert store.load(LOCALHOST) is None
    store.certfile.write_bytes(good)
    other = make_certs(tmp_path / "other", "localhost")
    store.keyfile.write_bytes(other.keyfile.read_bytes())
    assert store.load(LOCALHOST) is None


def test_store_refuses_an_expired_certificate(tmp_path: Path) -> None:
    store = CertificateStore(tmp_path / "state")
    store.prepare()
    long_ago = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    leaf = trustme.CA().issue_cert("localhost", not_after=long_ago + datetime.timedelta(days=1))
    store.save_pair(leaf.cert_chain_pems[0].bytes(), leaf.private_key_pem.bytes())
    assert store.load(LOCALHOST) is None


def test_only_one_holder_of_the_lock(tmp_path: Path) -> None:
    first, second = CertificateStore(tmp_path), CertificateStore(tmp_path)
    try:
        assert first.take_lock() and first.take_lock()
        assert not second.take_lock()
        first.release()
        assert second.take_lock()
    finally:
        first.release()
        second.release()


def test_https_port_must_be_a_port() -> None:
    with pytest.raises(ConfigError, match="expected a port number"):
        load(flags={**ACME, "https_port": "70000"})
    assert load(flags={**ACME, "https_port": "443"}).https_port == 443


def test_certificate_expiry_read_from_der_matches_cryptography(tmp_path: Path) -> None:
    from cryptography import x509

    ca = trustme.CA()
    for days in (1, 400, 365 * 40):  # the last is past 2049: GeneralizedTime, not UTCTime
        leaf = ca.issue_cert(
            "localhost",
            not_after=datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=days),
        )
        pem = tmp_path / f"cert{days}.pem"
        leaf.cert_chain_pems[0].write_to_path(str(pem))
        expected = x509.load_pem_x509_certificate(pem.read_bytes()).not_valid_after_utc
        assert not_after(pem) == expected
    (tmp_path / "junk.pem").write_text(
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    )
    with pytest.raises(ValueError):
        not_after(tmp_path / "junk.pem")
