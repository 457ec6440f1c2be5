"""HTTP/2 response headers encoded without HPACK's dynamic table, as nginx does.

h2's encoder indexes every header it sends: each response searches and grows a per-connection
table, which cost about a tenth of a small HTTP/2 request here. ``UnindexedEncoder`` takes its
place. It tells the client at the start of the first block that its table holds nothing (a
dynamic table size update to 0), then sends each header as a static-table index or as a
literal that is never added to a table. With no state, a header encodes the same way on every
connection, so its bytes are computed once and kept. Header blocks grow by a few dozen bytes;
and as no table holds anything, nothing a response says can be probed through compression.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hpack.hpack import encode_integer
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hpack.struct import NeverIndexedHeaderTuple
from hpack.table import HeaderTable

TABLE_SIZE_ZERO = b"\x20"  # a dynamic table size update (001xxxxx) to 0
CACHE_SIZE = 1024  # encoded headers kept, shared by every connection of the process
# Headers whose values are seldom sent twice: neither kept nor Huffman-coded.
UNIQUE = frozenset({b"x-request-id", b"set-cookie"})

_huffman = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)
_static: dict[bytes, tuple[int, dict[bytes, int]]] = HeaderTable.STATIC_TABLE_MAPPING
_cache: dict[tuple[bytes, bytes], bytes] = {}


class UnindexedEncoder:
    """What h2 uses of ``hpack.Encoder``: ``encode()`` and ``header_table_size``."""

    def __init__(self) -> None:
        self._table_size = 4096
        self._signal = True  # the next block starts with a table size update

    @property
    def header_table_size(self) -> int:
        return self._table_size

    @header_table_size.setter
    def header_table_size(self, value: int) -> None:
        # The client changed SETTINGS_HEADER_TABLE_SIZE: decoders may expect an update in
        # the next block, so say 0 again.
        self._table_size = value
        self._signal = True

    def encode(self, headers: Iterable[Any], huffman: bool = True) -> bytes:
        parts = [TABLE_SIZE_ZERO] if self._signal else []
        self._signal = False
        for header in headers:
            name, value = header[0], header[1]
            never_indexed = isinstance(header, NeverIndexedHeaderTuple)
            if never_indexed or name in UNIQUE:
                parts.append(_field(name, value, never_indexed=never_indexed, huffman=False))
                continue
            key = (name, value)
            encoded = _cache.get(key)
            if encoded is None:
                if len(_cache) >= CACHE_SIZE:
                    _cache.clear()
                encoded = _cache[key] = _field(name, value, never_indexed=False)
            parts.append(encoded)
        return b"".join(parts)


def _field(name: bytes, value: bytes, *, never_indexed: bool, huffman: bool = True) -> bytes:
    """One header field: an indexed one where the static table holds name and value (RFC 7541
    6.1), else a literal not indexed, or never indexed, with the name indexed where the
    static table holds it (6.2.2, 6.2.3)."""
    found = _static.get(name)
    if found is not None and not never_indexed:
        index = found[1].get(value)
        if index is not None:
            return bytes([0x80 | index])  # static indices are all under 127
    flag = 0x10 if never_indexed else 0x00
    if found is not None:
        head = encode_integer(found[0], 4)
        head[0] |= flag
        return bytes(head) + _string(value, huffman)
    return bytes([flag]) + _string(name, huffman) + _string(value, huffman)


def _string(data: bytes, huffman: bool = True) -> bytes:
    """A string literal (RFC 7541 5.2), Huffman-coded where that is shorter (and asked for:
    a value sent once is not worth the time its coding takes)."""
    coded = _huffman.encode(data) if huffman else data
    if len(coded) < len(data):
        head = encode_integer(len(coded), 7)
        head[0] |= 0x80
        return bytes(head) + coded
    return bytes(encode_integer(len(data), 7)) + data
