"""HTTP's rules for a response an app gives, shared by every path that writes one: the
exchange of hello's protocols (wire/exchange.py) and the WSGI bridge.

h11 refuses a response head it cannot write faithfully (a header name that is not a token, a
value with CR, LF or NUL, an unparsable Content-Length) and a body longer or shorter than its
Content-Length; uvicorn's httptools protocol refuses every control character in values.
hello keeps those checks on its faster paths. A refusal is a
``ResponseError``: raised to the app from its ``send`` (or ``start_response``), so nothing of
the bad head reaches the wire, and logged in one line by the stack (stack/observe.py), which
names the mount prefix of the app at fault.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
# What a value may not hold (uvicorn's rule): control characters other than tab, so no CR, LF
# or NUL. Space or tab at either end, which h11 also refuses, is let through: a recipient
# strips it as optional whitespace, so it can change nothing but the value's own edges.
BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
DIGITS = re.compile(rb"[0-9]{1,18}")
# Headers about one connection (RFC 9113 8.2.2): dropped from HTTP/2 and HTTP/3 responses.
CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)


class ResponseError(Exception):
    """An app's response that cannot go out as it is."""

    mount: str | None = None  # the prefix of the mounted app that gave it, once known

    def __str__(self) -> str:
        fault = super().__str__()
        return fault if self.mount is None else f"the app at {self.mount or '/'}: {fault}"


def check_head(status: int, headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The Content-Length ``headers`` declare (None if they declare none); ResponseError for
    a status or a header that HTTP cannot carry. Names must already be lower case."""
    check_status(status)
    length: int | None = None
    for name, value in headers:
        check_header(name, value)
        if name == b"content-length":
            length = content_length(value, length)
    return length


def check_status(status: int) -> None:
    if not 100 <= status <= 999:
        raise ResponseError(f"status {status} is not three digits")


def check_header(name: bytes, value: bytes) -> None:
    """ResponseError unless ``name`` is a token and ``value`` holds no control character."""
    if TOKEN.fullmatch(name) is None:
        raise ResponseError(f"header name {name!r} is not an HTTP token")
    if BAD_VALUE.search(value) is not None:
        raise ResponseError(
            f"header {name.decode('latin-1')} has a value HTTP cannot carry: {value!r} "
            "(CR, LF, NUL or another control character)"
        )


def content_length(value: bytes, earlier: int | None) -> int:
    """A Content-Length header's value, given the one an earlier header gave (if any)."""
    if DIGITS.fullmatch(value) is None:
        raise ResponseError(f"Content-Length {value!r} is not a number")
    if earlier is not None and int(value) != earlier:
        raise ResponseError("two different Content-Length headers")
    return int(value)


def length_fault(declared: int, sent: int, ended: bool) -> ResponseError | None:
    """What is wrong with a body of ``sent`` bytes (all of it, if ``ended``) against its
    declared Content-Length, if anything."""
    if sent > declared:
        return ResponseError(f"body longer than its Content-Length of {declared} bytes")
    if ended and sent < declared:
        return ResponseError(f"body of {sent} bytes, shorter than its Content-Length of {declared}")
    return None
