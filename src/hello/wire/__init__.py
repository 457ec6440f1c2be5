"""The wire: every protocol hello speaks, and the two changes it still makes to h2 and asyncio.

- ``choice``: which protocol serves a connection, and the engines behind each.
- ``tcp``: a TCP connection: its protocol, reads and writes, slow request bodies, the idle
  timer.
- ``h1``, ``h1_cycle``, ``reading``: HTTP/1.1 on httptools (llhttp), read in ``data_received``;
  ``h1_rules``: what RFC 9112 asks of a request beyond what llhttp checks.
- ``h11``: Hypercorn's h11 protocol, where h1 hands a connection over (Upgrade, h2c).
- ``http2``, ``http2_stream``, ``ws``: HTTP/2 on libnghttp2 (ngh2), WebSocket over it.
- ``h2``, ``h2_headers``: HTTP/2 where ngh2 is not used: Hypercorn's protocol on h2, fixed
  and made lighter.
- ``quic``: HTTP/3's UDP server, stopped promptly at shutdown.

hello's worker loop (server/serve.py) builds its connections and protocols itself. Two
changes to other packages' globals remain, made by ``install()`` in a fixed order, each
checked to have taken: h2's check of received header characters (h2_headers.py: the same
errors, in two regular expressions instead of a loop per byte), and the read buffer asyncio
gives each TLS connection. pyproject bounds h2 to the release the first is made for.
"""

from __future__ import annotations

import asyncio.sslproto
from types import CodeType, FunctionType
from typing import Any

from hello.errors import StartupError

# asyncio gives each TLS connection a 256 KiB read buffer, allocated whole up front (400 idle
# clients held 100 MB); two TLS records' worth is enough.
TLS_READ_BUFFER = 32 * 1024

_installed: list[str] = []


def install() -> list[str]:
    """Apply every change, in order; return their names. A second call changes nothing."""
    if _installed:
        return list(_installed)
    import h2.utilities

    from hello.wire import h2_headers

    # (what, where, name, the replacement, the code that must look the name up)
    changes: list[tuple[str, Any, str, Any, Any]] = [
        (
            "h2 header checks",
            h2.utilities,
            "_reject_illegal_characters",
            h2_headers.reject_illegal_characters,
            h2.utilities.validate_headers,
        ),
        ("TLS read buffer", asyncio.sslproto.SSLProtocol, "max_size", TLS_READ_BUFFER, None),
    ]
    for what, owner, name, new, reader in changes:
        if not hasattr(owner, name) or (reader is not None and name not in _names(reader)):
            raise StartupError(f"{what}: {name} is no longer where hello's wire layer changes it")
        setattr(owner, name, new)
        if getattr(owner, name) is not new:
            raise StartupError(f"{what}: {name} could not be replaced")
        _installed.append(what)
    return list(_installed)


def installed() -> list[str]:
    """What ``install()`` changed in this process, in order."""
    return list(_installed)


def _names(reader: Any) -> set[str]:
    """The global names a function (or a class's methods) looks up."""
    functions = [reader] if isinstance(reader, FunctionType) else list(vars(reader).values())
    codes = [f.__code__ for f in functions if hasattr(f, "__code__")]
    names: set[str] = set()
    while codes:  # each function's own code, and that of the functions inside it
        code = codes.pop()
        names.update(code.co_names)
        codes.extend(c for c in code.co_consts if isinstance(c, CodeType))
    return names
