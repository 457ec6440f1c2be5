"""--self-signed: HTTPS on this machine in one step, from a local CA hello makes itself.

In ``STATE_DIR/local``: a CA (``ca.pem``, its key ``ca-key.pem``) and a certificate for
localhost, 127.0.0.1 and ::1 that it signed (``cert.pem``, ``key.pem``). Made on the first
start, reused on the next ones: the CA for ten years, so it is trusted once; the certificate
is issued again when fewer than 30 days remain, or if the files do not fit together. Keys are
0600 and the directory 0700, as the ACME state is. The start logs the command that makes the
browser (and, on Linux, the system) trust the CA; a browser that trusts it then negotiates
HTTP/2 over TLS like any public site. Caddy's ``tls internal`` does the same for localhost.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import logging
import socket
import sys
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hello.config import Settings
from hello.errors import CertificateError, ConfigError
from hello.tls.context import load_server_context
from hello.tls.store import CertificateStore, private_key_pem

log = logging.getLogger("hello")

NAMES = ("localhost",)
ADDRESSES = ("127.0.0.1", "::1")
CA_DAYS = 3650
CERT_DAYS = 397  # what browsers accept from public CAs; a local root is not held to it
RENEW_DAYS = 30


@dataclasses.dataclass(frozen=True)
class LocalAuthority:
    """The files of the local CA and the certificate it issued, in ``directory``."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca-key.pem"

    @property
    def certfile(self) -> Path:
        return self.directory / "cert.pem"

    @property
    def keyfile(self) -> Path:
        return self.directory / "key.pem"

    def ensure(self) -> str:
        """Make or reuse the CA and the certificate; say what was done."""
        store = CertificateStore(self.directory)
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.directory.chmod(0o700)
            ca = self._load_ca()
            made = ca is None
            if ca is None:
                ca = _make_ca()
                store.write(self.ca_key, private_key_pem(ca[1]))
                store.write(self.ca_cert, _pem(ca[0]), 0o644)
            if made or not self._certificate_holds(ca[0]):
                cert_pem, key_pem = _issue(*ca)
                store.save_pair(cert_pem, key_pem)
                return "a new local CA and certificate" if made else "a new certificate"
        except OSError as error:
            raise ConfigError(
                f"--self-signed: cannot write {self.directory}: {error.strerror or error}"
            ) from None
        return "the stored local CA and certificate"

    def _load_ca(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
        try:
            certificate = x509.load_pem_x509_certificate(self.ca_cert.read_bytes())
            key = serialization.load_pem_private_key(self.ca_key.read_bytes(), None)
        except FileNotFoundError:
            return None  # the first start
        except (OSError, ValueError) as error:
            self._replacing(str(error))
            return None
        fits = isinstance(key, ec.EllipticCurvePrivateKey) and key.public_key() == (
            certificate.public_key()
        )
        if not fits or certificate.not_valid_after_utc <= _now():
            self._replacing("its key does not match" if not fits else "it has expired")
            return None
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return certificate, key

    def _replacing(self, why: str) -> None:
        log.warning(
            "--self-signed: the CA in %s is unusable (%s); a new one is made, which browsers "
            "must be told to trust again",
            self.directory,
            why,
        )

    def _certificate_holds(self, ca: x509.Certificate) -> bool:
        """Whether the stored certificate loads with its key, comes from ``ca``, names every
        local name and has more than RENEW_DAYS left."""
        try:
            load_server_context(self.certfile, self.keyfile, "local certificate", "local key")
            certificate = x509.load_pem_x509_certificate(self.certfile.read_bytes())
            certificate.verify_directly_issued_by(ca)
            names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except (CertificateError, OSError, ValueError, TypeError, InvalidSignature):
            return False
        except x509.ExtensionNotFound:  # no subjectAltName
            return False
        left = certificate.not_valid_after_utc - _now()
        return set(names.value) >= set(_alt_names()) and left > datetime.timedelta(RENEW_DAYS)

    def trust_commands(self) -> list[tuple[str, str]]:
        """(what, command) for making this machine trust the CA."""
        ca = self.ca_cert
        if sys.platform == "darwin":
            keychain = "~/Library/Keychains/login.keychain-db"
            command = f"security add-trusted-cert -r trustRoot -k {keychain} {ca}"
            return [("the system and its browsers", command)]
        nssdb = "$HOME/.pki/nssdb"
        return [
            (
                "Chromium and Chrome",
                f"mkdir -p {nssdb} && certutil -d sql:{nssdb} -A -t C,, "
                f'-n "hello local CA" -i {ca}',
            ),
            (
                "the system (curl, Python; Debian)",
                f"cp {ca} /usr/local/share/ca-certificates/hello-local-ca.crt"
                " && update-ca-certificates",
            ),
        ]


def prepare(settings: Settings) -> Settings:
    """``settings`` serving the local certificate, made or reused; the trust commands logged.

    No HSTS unless asked for: a browser would remember it for localhost and refuse plain HTTP
    there for a year, for every project."""
    authority = LocalAuthority(settings.state_dir / "local")
    done = authority.ensure()
    names = ", ".join(NAMES + ADDRESSES)
    log.info("--self-signed: serving %s for %s from %s", done, names, authority.directory)
    for what, command in authority.trust_commands():
        log.info("--self-signed: to trust it in %s: %s", what, command)
    sources = dict(settings.sources)
    sources["certfile"] = sources["keyfile"] = f"--self-signed in {authority.directory}:"
    hsts = settings.hsts_max_age if settings.source("hsts_max_age") != "default" else 0
    return dataclasses.replace(
        settings,
        certfile=authority.certfile,
        keyfile=authority.keyfile,
        hsts_max_age=hsts,
        sources=sources,
    )


def _make_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    made = f"{socket.gethostname()}, {now:%Y-%m-%d}"
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"hello local CA ({made})")])
    identifier = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    usage = dict.fromkeys(_KEY_USAGES, False) | {"key_cert_sign": True, "crl_sign": True}
    certificate = (
        _builder(name, name, key.public_key(), now, CA_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(**usage), critical=True)
        .add_extension(identifier, critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def _issue(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    authority = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    usage = dict.fromkeys(_KEY_USAGES, False) | {"digital_signature": True}
    certificate = (
        _builder(name, ca.subject, key.public_key(), now, CERT_DAYS)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(**usage), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.SubjectAlternativeName(_alt_names()), critical=False)
        .add_extension(authority, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return _pem(certificate), private_key_pem(key)


_KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: datetime.datetime,
    days: int,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
    )


def _alt_names() -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in NAMES]
    return names + [x509.IPAddress(ipaddress.ip_address(a)) for a in ADDRESSES]


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
