"""RFC 9112's rules for an HTTP/1.1 request that llhttp leaves to the server, and how a plain
port answers bytes that are no HTTP/1.x at all.

llhttp in its strict mode refuses obs-fold, NUL and other control characters, two
Content-Lengths, Transfer-Encoding beside Content-Length or not ending in chunked.
``check_request`` adds the rest; hello's property tests (tests/test_fuzz.py) hold the whole
against h11.
"""

from __future__ import annotations

import re

# An invalid HTTP/2 connection preface is answered as HTTP/2 does: the server's preface (an
# empty SETTINGS frame), then GOAWAY with PROTOCOL_ERROR for last stream 0.
H2_SETTINGS = bytes.fromhex("000000 04 00 00000000")  # length 0, type SETTINGS, stream 0
H2_GOAWAY = bytes.fromhex("000008 07 00 00000000 00000000 00000001")  # last 0, PROTOCOL_ERROR
H2_PROTOCOL_ERROR = H2_SETTINGS + H2_GOAWAY
MAX_REQUEST_LINE = 8192  # bytes of a first request line looked at for its version
_HTTP1_VERSION = re.compile(rb" HTTP/1\b")


class Refused(Exception):
    """Raised by a parser callback: the request is answered ``status`` and the connection
    closed (httptools re-raises it as the context of an HttpParserCallbackError)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def check_request(version: str, headers: list[tuple[bytes, bytes]]) -> bool:
    """Refused unless the request line ended in its version (llhttp takes one without as
    HTTP/0.9), there is one Host (none only in HTTP/1.0, 3.2), and at most one
    Transfer-Encoding, with no coding but chunked, the one hello decodes (6.1: else 501),
    and never beside a Content-Length (6.1: a smuggling attempt; llhttp refuses it, h11 lets
    Transfer-Encoding win). ``headers`` have lower-case names. Whether the client expects
    100 Continue."""
    hosts = 0
    codings = []
    length = expects = False
    for name, value in headers:
        if name == b"host":
            hosts += 1
        elif name == b"transfer-encoding":
            codings.append(value)
        elif name == b"content-length":
            length = True
        elif name == b"expect":
            expects = value.lower() == b"100-continue"
    if version not in ("1.0", "1.1"):
        raise Refused(400)
    if hosts > 1 or (hosts == 0 and version == "1.1"):
        raise Refused(400)
    if len(codings) > 1 or (codings and length):  # llhttp joins them, and judges the last
        raise Refused(400)
    if codings and codings[0].strip().lower() != b"chunked":
        raise Refused(501)
    return expects


def not_http1(first_bytes: bytes) -> bool:
    """Whether a plain connection's first bytes, which failed to parse, are no HTTP/1.x
    request line at all. On a port that speaks HTTP/1.1 and h2c, the client then meant
    HTTP/2 with prior knowledge and sent an invalid connection preface (RFC 9113 3.4)."""
    line = first_bytes[:MAX_REQUEST_LINE].partition(b"\n")[0]
    return _HTTP1_VERSION.search(line) is None
