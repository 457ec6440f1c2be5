"""The engines of HTTP/1.1: a request parser behind one interface, httptools' own.

h1.py drives a parser with httptools' ``HttpRequestParser`` interface: ``feed_data`` calls
back ``on_message_begin``, ``on_url``, ``on_header``, ``on_headers_complete``, ``on_body``
and ``on_message_complete`` as it goes, raises the engine's upgrade exception after the head
of an Upgrade (or CONNECT) request and its error exception on malformed bytes (with what a
callback raised as ``__context__``). httptools (llhttp) is the engine wherever it imports.
Where it does not (a platform without its wheel), h11 parses instead, behind the same
interface, so the one HTTP/1.1 driver and the one exchange serve on either: the fallback is
an engine, not a second protocol.

h11 is a whole connection state machine; only its request side is used. It will not parse
the next request until it has seen a response to the last, so a placeholder response is put
through it (never written anywhere) as each request head arrives; h1_cycle.py writes the real
one. Its keep-alive rule is its own (HTTP/1.0 closes even with ``Connection: keep-alive``),
and the driver follows it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import h11

# h11 buffers an unfinished head up to this size before it refuses it; the driver answers
# 431 well before (its --max-header-size, counted as the head arrives).
H11_BUFFER = 1024 * 1024
_PLACEHOLDER = h11.Response(status_code=200, headers=[(b"content-length", b"0")])


class Callbacks(Protocol):
    """What a parser calls back: the driver (h1.H1Protocol)."""

    def on_message_begin(self) -> None: ...

    def on_url(self, url: bytes) -> None: ...

    def on_header(self, name: bytes, value: bytes) -> None: ...

    def on_headers_complete(self) -> None: ...

    def on_body(self, body: bytes) -> None: ...

    def on_message_complete(self) -> None: ...


class Parser(Protocol):
    """httptools' HttpRequestParser, as the driver uses it."""

    def feed_data(self, data: bytes) -> None: ...

    def get_http_version(self) -> str: ...

    def get_method(self) -> bytes: ...

    def should_keep_alive(self) -> bool: ...

    def should_upgrade(self) -> bool: ...


@dataclass(frozen=True)
class ParserEngine:
    """An HTTP/1.1 engine: how to build its parser, and what its exceptions are."""

    name: str
    build: Callable[[Callbacks], Parser]
    error: type[Exception]  # malformed bytes
    upgrade: type[Exception]  # an Upgrade (or CONNECT) request's head was parsed


def parser_engine(name: str = "auto") -> ParserEngine:
    """httptools where it imports (``auto``), else h11; ``h11`` asks for h11."""
    if name != "h11":
        try:
            import httptools
        except ImportError:
            pass
        else:
            return ParserEngine(
                "httptools",
                httptools.HttpRequestParser,
                httptools.HttpParserError,
                httptools.HttpParserUpgrade,
            )
    return ParserEngine("h11", H11Parser, ParserError, ParserUpgrade)


class ParserError(Exception):
    """h11 found the request malformed (its message says how)."""


class ParserUpgrade(Exception):
    """The head of an Upgrade or CONNECT request was parsed."""


class H11Parser:
    """h11's request side, behind httptools' parser interface."""

    method = b""
    version = "1.1"
    keep_alive = True
    upgrade = False
    begun = False  # on_message_begin was called for the request now arriving

    def __init__(self, callbacks: Callbacks) -> None:
        self.callbacks = callbacks
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=H11_BUFFER)

    def get_http_version(self) -> str:
        return self.version

    def get_method(self) -> bytes:
        return self.method

    def should_keep_alive(self) -> bool:
        return self.keep_alive

    def should_upgrade(self) -> bool:
        return self.upgrade

    def feed_data(self, data: bytes) -> None:
        """Parse ``data``; as httptools does, an exception a callback raises becomes the
        parser's error, with that exception as its context."""
        self.conn.receive_data(data)
        try:
            self._parse()
        except (ParserError, ParserUpgrade):
            raise
        except h11.RemoteProtocolError as error:
            raise ParserError(str(error)) from None
        except Exception as error:
            raise ParserError(f"{type(error).__name__} in a callback") from error

    def _parse(self) -> None:
        conn, callbacks = self.conn, self.callbacks
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                if not self.begun and conn.their_state is h11.IDLE and conn.trailing_data[0]:
                    self.begun = True  # a head has begun: the driver counts it as it comes
                    callbacks.on_message_begin()
                return
            if event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                if conn.their_state is h11.MUST_CLOSE and conn.trailing_data[0]:
                    raise ParserError("bytes after a request that ends the connection")
                return
            if isinstance(event, h11.Request):
                self._request(event)
            elif isinstance(event, h11.Data):
                callbacks.on_body(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                self.begun = False
                callbacks.on_message_complete()
                if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                    conn.start_next_cycle()

    def _request(self, event: h11.Request) -> None:
        callbacks = self.callbacks
        if not self.begun:
            callbacks.on_message_begin()
        self.method = bytes(event.method)
        self.version = event.http_version.decode("ascii")
        self.upgrade = event.method == b"CONNECT" or any(
            name == b"upgrade" for name, _ in event.headers
        )
        callbacks.on_url(bytes(event.target))
        for name, value in event.headers.raw_items():
            callbacks.on_header(bytes(name), bytes(value))
        if self.upgrade:
            self.keep_alive = False
            callbacks.on_headers_complete()
            raise ParserUpgrade()
        # h11 parses the next request only once this one has had a response: the real one
        # is h1_cycle.py's; this one goes nowhere. h11 then says whether the connection
        # may carry another request.
        conn = self.conn
        conn.send(_PLACEHOLDER)
        conn.send(h11.EndOfMessage())
        self.keep_alive = conn.our_state is not h11.MUST_CLOSE
        callbacks.on_headers_complete()
