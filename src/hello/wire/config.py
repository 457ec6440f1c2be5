"""Hypercorn's Config, filled from hello's Settings: timeouts, limits, headers, TLS."""

from __future__ import annotations

import logging
import ssl
import time
from wsgiref.handlers import format_date_time

from hypercorn.config import Config

from hello.config import Settings
from hello.tls import create_ssl_context
from hello.tls.reload import CertificateReloader

log = logging.getLogger("hello")

H2_HEADER_LIST_FACTOR = 16


class HypercornConfig(Config):
    """Hypercorn's Config, with hello's own TLS context (protocols, ciphers, checked files)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.bind = list(settings.bind)
        self.certfile = str(settings.certfile) if settings.certfile else None
        self.keyfile = str(settings.keyfile) if settings.keyfile else None
        self.workers = settings.workers
        self.accesslog = None  # hello writes its own (observe.py): request ids, JSON
        self.errorlog = settings.error_log
        self.loglevel = settings.log_level.upper()
        self.graceful_timeout = settings.graceful_timeout
        self.wsgi_max_body_size = settings.max_body_size
        # Hypercorn closes a connection that sends no complete request head within its
        # keep-alive timeout (the timer starts with the connection and after each response).
        self.keep_alive_timeout = settings.header_timeout
        self.ssl_handshake_timeout = settings.header_timeout
        self.include_server_header = False
        self.include_date_header = False  # response_headers adds it, formatted once a second
        self.h11_max_incomplete_size = settings.max_header_size  # h11 answers 431 past it
        # HTTP/2 headers past this break the connection (HPACK cannot skip them); up to it,
        # stack.limits.HeaderLimit answers 431 for heads over max_header_size, as HTTP/1.1 does.
        self.h2_max_header_list_size = H2_HEADER_LIST_FACTOR * settings.max_header_size
        if settings.server_header:
            self.response_headers_extra = [(b"server", settings.server_header.encode())]

    response_headers_extra: list[tuple[bytes, bytes]] = []
    _date: tuple[int, bytes] = (0, b"")
    _lines: tuple[int, bytes] = (0, b"")
    _fields: tuple[int, tuple[tuple[bytes, bytes], ...]] = (0, ())

    def response_headers(self, protocol: str) -> list[tuple[bytes, bytes]]:
        second = int(time.time())
        if self._date[0] != second:
            self._date = (second, format_date_time(second).encode("ascii"))
        date = (b"date", self._date[1])
        return [date, *super().response_headers(protocol), *self.response_headers_extra]

    def response_lines(self, protocol: str) -> bytes:
        """``response_headers`` as HTTP/1.1 header lines, encoded once a second."""
        second = int(time.time())
        if self._lines[0] != second:
            headers = self.response_headers(protocol)
            self._lines = (second, b"".join(b"%b: %b\r\n" % header for header in headers))
        return self._lines[1]

    def response_fields(self) -> tuple[tuple[bytes, bytes], ...]:
        """``response_headers`` for HTTP/2, made once a second."""
        second = int(time.time())
        if self._fields[0] != second:
            self._fields = (second, tuple(self.response_headers("h2")))
        return self._fields[1]

    reloader: CertificateReloader | None = None

    def create_ssl_context(self) -> ssl.SSLContext | None:
        if self.reloader is not None:
            return self.reloader.server_context()
        return create_ssl_context(self.settings) if self.settings.tls else None
