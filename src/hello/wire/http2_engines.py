"""The engines of HTTP/2, behind one interface (ngh2's): libnghttp2 through ngh2 wherever it
imports, or h2 (h2_engine.py) where it does not or ``--http2-engine h2`` asks. The driver
(http2.py) builds its connection from an ``Engine`` and knows the events and the exception
by the engine's classes; everything else is the same calls on either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from h2.errors import ErrorCodes as ErrorCode
from h2.settings import SettingCodes

from hello.errors import ConfigError

__all__ = ["Engine", "ErrorCode", "SettingCodes", "http2_engine"]


@dataclass(frozen=True)
class Engine:
    """An HTTP/2 engine: how to build a server connection, and its classes."""

    name: str
    # (the largest request head list, the client's reset rate limit) -> a server connection
    connect: Callable[[int, tuple[int, int]], Any]
    error: type[Exception]  # what its calls raise: a violation, or a stream that is gone
    state_error: type[Exception]  # ...the connection has ended
    # Its events, in the order http2.py looks for them.
    events: tuple[Any, ...]
    release: Callable[[Any], None] = lambda connection: None  # a connection that has ended


def http2_engine(name: str = "auto") -> Engine:
    """ngh2 for ``auto`` where it imports, else h2; ``ngh2``: a ConfigError where it is
    missing; ``h2``: h2."""
    if name != "h2":
        try:
            import ngh2
        except ImportError as error:
            if name == "ngh2":
                raise ConfigError(
                    f"--http2-engine ngh2: {error}; install ngh2 or choose h2"
                ) from None
        else:

            def connect(header_list: int, rate: tuple[int, int]) -> Any:
                return ngh2.Connection(
                    ngh2.Role.SERVER,
                    ngh2.Configuration(
                        auto_window_update=False,
                        max_inbound_header_list_size=header_list,
                        stream_reset_rate_limit=rate,
                    ),
                )

            return Engine("ngh2", connect, ngh2.NGH2Error, ngh2.ConnectionStateError, _events(ngh2))
    from hello.wire import h2_engine

    def fallback(header_list: int, rate: tuple[int, int]) -> Any:
        config = h2_engine.Configuration(
            auto_window_update=False,
            max_inbound_header_list_size=header_list,
            stream_reset_rate_limit=rate,
        )
        return h2_engine.Connection(config)

    return Engine(
        "h2",
        fallback,
        h2_engine.NGH2Error,
        h2_engine.ConnectionStateError,
        _events(h2_engine),
        h2_engine.Connection.release,
    )


def _events(module: Any) -> tuple[Any, ...]:
    return (
        module.DataReceived,
        module.RequestReceived,
        module.StreamClosed,
        module.StreamReset,
        module.TrailersReceived,
        module.ConnectionClosed,
        module.WindowUpdated,
        module.SettingsReceived,
        module.GoAwayReceived,
    )
