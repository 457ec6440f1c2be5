"""The state directory of automatic HTTPS: account key, certificate and key, challenge tokens.

Every file is written whole or not at all (a temporary file in the same directory, flushed,
then renamed over the old one); key files are 0600 and the directory 0700. A stored pair is
only served if it parses, its key matches, it names exactly the wanted domains and it has not
expired; anything else (a half-written file, a stray edit) is reported and replaced.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hello.errors import CertificateError, ConfigError
from hello.tls.challenges import TOKEN
from hello.tls.context import load_server_context

log = logging.getLogger("hello")

TEMPORARY_DAYS = 7  # validity of the self-signed stand-in served until the CA answers


@dataclass(frozen=True)
class StoredCertificate:
    """A served pair's facts: what renewal needs."""

    pem: bytes
    domains: frozenset[str]
    not_before: datetime.datetime
    not_after: datetime.datetime
    self_signed: bool

    def days_left(self, now: datetime.datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400


class CertificateStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.certfile = directory / "cert.pem"
        self.keyfile = directory / "key.pem"
        self.account_key = directory / "account.key"
        self.challenges = directory / "challenges"
        self._lock: IO[bytes] | None = None

    def prepare(self) -> None:
        """Create the directory (0700) or tighten it; ConfigError if it cannot be used."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.directory.chmod(0o700)
            self.challenges.mkdir(mode=0o700, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"--state-dir {self.directory}: {error.strerror or error}") from None

    def write(self, path: Path, data: bytes, mode: int = 0o600) -> None:
        """Replace ``path`` with ``data`` atomically."""
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as file:
                os.fchmod(file.fileno(), mode)
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def save_pair(self, cert_pem: bytes, key_pem: bytes) -> None:
        # The key first: a reader between the two renames sees a mismatch, refuses it and
        # keeps what it serves until the certificate follows a moment later.
        self.write(self.keyfile, key_pem)
        self.write(self.certfile, cert_pem, 0o644)

    def load(self, domains: frozenset[str]) -> StoredCertificate | None:
        """The stored pair if it can be served for ``domains``; None (with the reason logged)."""
        if not self.certfile.exists() and not self.keyfile.exists():
            return None
        try:
            load_server_context(self.certfile, self.keyfile, "stored certificate", "stored key")
            stored = describe(self.certfile.read_bytes())
        except (CertificateError, ValueError, OSError) as error:
            log.warning(
                "ACME: the stored certificate in %s is unusable (%s)", self.directory, error
            )
            return None
        if stored.domains != domains:
            names = ", ".join(sorted(stored.domains))
            log.info("ACME: the stored certificate is for %s, not the names asked for", names)
            return None
        if stored.not_after <= _now():
            log.info("ACME: the stored certificate expired on %s", stored.not_after)
            return None
        return stored

    def save_temporary(self, domains: frozenset[str]) -> StoredCertificate:
        """A self-signed pair for ``domains``, so TLS listeners can start before the CA answers."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hello temporary certificate")])
        now = _now()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=TEMPORARY_DAYS))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(d) for d in sorted(domains)]), False
            )
            .sign(key, hashes.SHA256())
        )
        cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
        self.save_pair(cert_pem, private_key_pem(key))
        return describe(cert_pem)

    def publish_challenge(self, token: str, key_authorization: str) -> None:
        if not TOKEN.match(token):
            raise ValueError(f"malformed challenge token {token!r}")
        self.write(self.challenges / token, key_authorization.encode(), 0o644)

    def withdraw_challenge(self, token: str) -> None:
        if TOKEN.match(token):
            (self.challenges / token).unlink(missing_ok=True)

    def take_lock(self) -> bool:
        """Become the one process that orders and renews; False while another one is."""
        if self._lock is not None:
            return True
        lock = (self.directory / "lock").open("ab")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            return False
        self._lock = lock  # held until release() or this process's exit
        return True

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file drops the lock
            self._lock = None


def describe(cert_pem: bytes) -> StoredCertificate:
    """The facts of the first certificate in ``cert_pem``; ValueError if it has none."""
    certificate = x509.load_pem_x509_certificate(cert_pem)
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        domains = frozenset(names.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        domains = frozenset()
    return StoredCertificate(
        pem=cert_pem,
        domains=domains,
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        self_signed=certificate.issuer == certificate.subject,
    )


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
