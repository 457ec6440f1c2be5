"""Listening sockets for every bind, opened before anything serves; a failure names the bind."""

from __future__ import annotations

import logging
from socket import AF_INET, AF_INET6, SOCK_DGRAM, socket

from hypercorn.config import Config, Sockets

from hello.config import Settings
from hello.errors import StartupError

log = logging.getLogger("hello")


def bind_sockets(settings: Settings) -> Sockets:
    """Open every ``--bind`` and ``--insecure-bind``; StartupError names the one that failed.
    TLS on every ``--bind`` or none."""
    opened: list[socket] = []
    insecure: list[socket] = []
    try:
        _bind_tcp(settings, "bind", opened)
        _bind_tcp(settings, "insecure_bind", insecure)
    except StartupError:
        for sock in [*opened, *insecure]:
            sock.close()
        raise
    quic = _bind_quic(settings, [*opened, *insecure])
    if settings.tls:
        return Sockets(secure_sockets=opened, insecure_sockets=insecure, quic_sockets=quic)
    return Sockets(secure_sockets=[], insecure_sockets=opened, quic_sockets=[])


def _bind_tcp(settings: Settings, name: str, opened: list[socket]) -> None:
    for bind in getattr(settings, name):
        single = Config()
        single.bind = [bind]
        single.workers = settings.workers
        try:
            opened.extend(single.create_sockets().insecure_sockets)
        except OSError as error:
            reason = error.strerror or str(error)
            raise StartupError(
                f"cannot listen on {bind} ({settings.source(name)}): {reason}"
            ) from None


def _bind_quic(settings: Settings, opened: list[socket]) -> list[socket]:
    quic: list[socket] = []
    for bind in settings.quic_bind:
        host, _, port = bind.rpartition(":")
        host = host.strip("[]")
        family = AF_INET6 if ":" in host else AF_INET
        sock = socket(family, SOCK_DGRAM)
        try:
            sock.bind((host, int(port)))
        except OSError as error:
            for other in [*opened, *quic, sock]:
                other.close()
            reason = error.strerror or str(error)
            raise StartupError(f"cannot listen on UDP {bind} (--quic-bind): {reason}") from None
        sock.setblocking(False)
        quic.append(sock)
    return quic
