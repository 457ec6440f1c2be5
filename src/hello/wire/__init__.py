"""The wire: every protocol hello speaks, and every change it makes to Hypercorn and asyncio.

- ``h1``, ``h1_cycle``, ``reading``: HTTP/1.1 on httptools (llhttp), read in ``data_received``;
  ``h1_rules``: what RFC 9112 asks of a request beyond what llhttp checks.
- ``h11``: Hypercorn's h11 protocol, where h1 hands a connection over (Upgrade, h2c).
- ``http2``, ``http2_stream``, ``ws``: HTTP/2 on libnghttp2 (ngh2), WebSocket over it.
- ``h2``, ``h2_headers``: HTTP/2 where ngh2 is not used: Hypercorn's protocol on h2, fixed
  and made lighter.
- ``quic``: HTTP/3's UDP server, stopped promptly at shutdown.
- ``tcp``: the TCP server: slow request bodies, the idle timer.
- ``heads``: the checks every response head and body passes, on every protocol.

Hypercorn builds its protocols and servers from module globals; ``install()`` replaces them,
in a fixed order, and checks that each replacement took and that the code that reads it still
does. These are changes to a library's internals: pyproject bounds Hypercorn, h2 and hpack to
the releases they were made for, and ``install()`` refuses another Hypercorn minor release.
"""

from __future__ import annotations

import asyncio.sslproto
import importlib.metadata
from collections.abc import Callable
from types import CodeType, FunctionType
from typing import Any

from hello.errors import ConfigError, StartupError

HYPERCORN_SERIES = "0.18."  # the release whose internals these changes are made for
# asyncio gives each TLS connection a 256 KiB read buffer, allocated whole up front (400 idle
# clients held 100 MB); two TLS records' worth is enough.
TLS_READ_BUFFER = 32 * 1024

_installed: list[str] = []


def install(http2_engine: str = "auto") -> list[str]:
    """Apply every change, in order; return their names. A second call changes nothing.

    ``http2_engine``: "ngh2", "h2" (Hypercorn's protocol), or "auto" (ngh2 where it is
    installed)."""
    if _installed:
        return list(_installed)
    import h2.utilities
    import hypercorn.asyncio.run
    import hypercorn.protocol

    from hello.wire import h2 as h2_protocol
    from hello.wire import h2_headers, h11, quic, tcp

    version = importlib.metadata.version("hypercorn")
    if not version.startswith(HYPERCORN_SERIES):
        raise StartupError(
            f"hello's wire layer is made for Hypercorn {HYPERCORN_SERIES}x, not {version}; "
            "install the version pyproject.toml names"
        )
    wrapper = hypercorn.protocol.ProtocolWrapper
    http2 = http2_protocol(http2_engine) or h2_protocol.H2Protocol
    serve = hypercorn.asyncio.run.worker_serve
    # (what, where, name, the replacement, the code that must look the name up)
    changes: list[tuple[str, Any, str, Any, Any]] = [
        (
            "h2 header checks",
            h2.utilities,
            "_reject_illegal_characters",
            h2_headers.reject_illegal_characters,
            h2.utilities.validate_headers,
        ),
        ("HTTP/2 protocol", hypercorn.protocol, "H2Protocol", http2, wrapper),
        ("HTTP/1.1 protocol", hypercorn.protocol, "H11Protocol", _h1_or(h11.H11Protocol), wrapper),
        ("TCP server", hypercorn.asyncio.run, "TCPServer", tcp.GuardedTCPServer, serve),
        ("UDP server", hypercorn.asyncio.run, "UDPServer", quic.QuicServer, serve),
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


def http2_protocol(engine: str) -> type | None:
    """hello's HTTP/2 protocol on ngh2 for ``engine``, or None for Hypercorn's (h2, or auto
    where ngh2 cannot be imported); ConfigError for ngh2 where it is missing."""
    if engine == "h2":
        return None
    try:
        from hello.wire.http2 import H2Protocol
    except ImportError as error:
        if engine == "ngh2":
            raise ConfigError(f"--http2-engine ngh2: {error}; install ngh2 or choose h2") from None
        return None
    return H2Protocol


def http2_engine() -> str:
    """The HTTP/2 engine serving this process (after ``install()``): "ngh2" or "h2"."""
    import hypercorn.protocol

    protocol: type = getattr(hypercorn.protocol, "H2Protocol")  # noqa: B009 (not exported)
    return "ngh2" if protocol.__module__ == "hello.wire.http2" else "h2"


def engines() -> list[tuple[str, str, str | None]]:
    """(protocol, library, its version) for the engine serving each protocol by default; the
    version None for HTTP/3 when aioquic is not installed."""
    rows: list[tuple[str, str, str | None]] = []
    for role, choices in (
        ("HTTP/1.1", ("httptools", "h11")),
        ("HTTP/2", ("ngh2", "h2")),
        ("HTTP/3", ("aioquic",)),
    ):
        for library in choices:
            try:
                rows.append((role, library, importlib.metadata.version(library)))
                break
            except importlib.metadata.PackageNotFoundError:
                continue
        else:
            rows.append((role, choices[-1], None))
    return rows


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


def _h1_or(fallback: type) -> Callable[..., Any]:
    """HTTP/1.1 on httptools, handing over to ``fallback`` (Hypercorn's h11 protocol, as fixed
    by h11.py) for upgrades; ``fallback`` itself where httptools is not installed."""
    try:
        from hello.wire.h1 import H1Protocol
    except ImportError:
        return fallback

    def build(*args: Any) -> Any:
        return H1Protocol(*args, fallback=lambda: fallback(*args))

    return build
