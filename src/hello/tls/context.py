"""Server SSL contexts: TLS 1.2+ with ALPN h2 and http/1.1, checked before anything listens."""

from __future__ import annotations

import ssl
from pathlib import Path

from hello.config import Settings
from hello.errors import CertificateError

ALPN_PROTOCOLS = ("h2", "http/1.1")

# Forward secrecy and AEAD only for TLS 1.2 (RFC 7540 9.2.2 forbids the rest for HTTP/2);
# TLS 1.3 suites are fixed by OpenSSL and all acceptable.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def _no_password() -> bytes:
    # An encrypted key must fail here, not prompt on a terminal nobody is watching.
    return b""


def load_server_context(
    certfile: Path, keyfile: Path, cert_label: str, key_label: str
) -> ssl.SSLContext:
    """A fresh server context for ``certfile``/``keyfile``; labels name them in errors."""
    _read(certfile, cert_label)
    _read(keyfile, key_label)
    _check_certificates(certfile, cert_label)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.options |= ssl.OP_NO_RENEGOTIATION
    context.set_ciphers(TLS12_CIPHERS)
    context.set_alpn_protocols(list(ALPN_PROTOCOLS))
    try:
        context.load_cert_chain(certfile, keyfile, password=_no_password)
    except ssl.SSLError as error:
        if "KEY_VALUES_MISMATCH" in str(error):
            raise CertificateError(f"{key_label} does not match {cert_label}") from None
        raise CertificateError(
            f"{key_label} is not a usable PEM private key (malformed, or encrypted) ({error})"
        ) from None
    return context


def create_ssl_context(settings: Settings) -> ssl.SSLContext:
    """The context for ``settings``' certificate pair; CertificateError names the flag at fault."""
    if settings.certfile is None or settings.keyfile is None:
        raise CertificateError("TLS needs both certfile and keyfile")
    return load_server_context(
        settings.certfile,
        settings.keyfile,
        settings.describe("certfile"),
        settings.describe("keyfile"),
    )


def _read(path: Path, label: str) -> None:
    try:
        with path.open("rb") as file:
            file.read(1)
    except OSError as error:
        raise CertificateError(f"cannot read {label}: {error.strerror or error}") from None


def _check_certificates(certfile: Path, label: str) -> None:
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        probe.load_verify_locations(cafile=certfile)
    except (ssl.SSLError, ValueError, UnicodeDecodeError):
        raise CertificateError(f"{label} holds no PEM certificate") from None
