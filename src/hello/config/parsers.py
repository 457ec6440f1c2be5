"""Parsers: a string from a flag, a variable or a file in, a value out, ValueError if bad."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_BIND = "127.0.0.1:8000"
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
ACME_SHORTCUTS = {"letsencrypt": LETS_ENCRYPT, "letsencrypt-staging": LETS_ENCRYPT_STAGING}

Parser = Callable[[str], Any]


_HOST_PORT = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.%\w]+\]|[^\[\]:/\s]+):(?P<port>\d{1,5})$")


def parse_bind(text: str) -> str:
    """Accept ``host:port``, ``[v6addr]:port``, ``unix:/path`` or ``fd://N``."""
    if text.startswith("unix:"):
        if not text[len("unix:") :]:
            raise ValueError("expected unix:/path/to/socket")
        return text
    if text.startswith("fd://"):
        if not text[len("fd://") :].isdigit():
            raise ValueError("expected fd://N with N a file descriptor number")
        return text
    match = _HOST_PORT.match(text)
    if match is None:
        raise ValueError("expected HOST:PORT, [IPv6]:PORT, unix:/path or fd://N")
    if int(match["port"]) > 65535:
        raise ValueError("port must be 0-65535")
    return text


def parse_path(text: str) -> Path:
    if not text.strip():
        raise ValueError("expected a file path")
    return Path(text).expanduser()


def _whole_number(minimum: int) -> Parser:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise ValueError(f"expected a whole number of {minimum} or more")
        return value

    return parse


parse_workers = _whole_number(1)


def parse_port(text: str) -> int:
    port: int = _whole_number(1)(text)
    if port > 65535:
        raise ValueError("expected a port number, 1-65535")
    return port


parse_count = _whole_number(0)


def _non_negative(unit: str) -> Parser:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"expected a number of {unit}") from None
        if not value >= 0 or value == float("inf"):
            raise ValueError(f"expected a finite number of {unit}, 0 or more")
        return value

    return parse


parse_seconds = _non_negative("seconds")
parse_days = _non_negative("days")


_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_size(text: str) -> int:
    """Bytes, or with a unit: ``64KiB``, ``16MiB``, ``1G`` (binary multiples)."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError("expected a size such as 1048576, 512KiB or 16MiB")
    unit = (match[2] or "").lower()[:1]
    return int(match[1]) * _SIZE_UNITS[unit]


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def parse_static(text: str) -> tuple[str, Path]:
    """``PREFIX=DIR``: serve the directory DIR at the URL prefix PREFIX."""
    prefix, equals, directory = text.partition("=")
    if not equals or not directory:
        raise ValueError("expected PREFIX=DIR, e.g. /media=/srv/media")
    _check_prefix(prefix)
    path = Path(directory).expanduser()
    if not path.is_dir():
        raise ValueError(f"{directory} is not a directory")
    return prefix, path


_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*(\(\))?$")
MOUNT_KINDS = ("auto", "wsgi", "asgi")


@dataclass(frozen=True)
class AppSpec:
    """``[wsgi:|asgi:]MODULE:ATTR``, or ``MODULE:FACTORY()``: an app to import (and call)."""

    target: str  # MODULE:ATTR, without the parentheses
    kind: str = "auto"
    factory: bool = False  # ATTR is called, with no arguments, to make the app

    def __str__(self) -> str:
        kind = "" if self.kind == "auto" else f"{self.kind}:"
        return f"{kind}{self.target}{'()' if self.factory else ''}"


@dataclass(frozen=True)
class MountSpec(AppSpec):
    """``--mount PREFIX=[wsgi:|asgi:]MODULE:ATTR``: an app to import and serve under PREFIX."""

    prefix: str = ""

    def __str__(self) -> str:
        return f"{self.prefix}={AppSpec.__str__(self)}"


def parse_app(text: str) -> AppSpec:
    """``MODULE:ATTR``, ``MODULE:FACTORY()``, with ``wsgi:`` or ``asgi:`` to force the kind."""
    kind = "auto"
    head, colon, rest = text.partition(":")
    if colon and head in MOUNT_KINDS:
        kind, text = head, rest
    if not _TARGET.match(text):
        raise ValueError(
            f"{text!r} is not MODULE:ATTR or MODULE:FACTORY(), e.g. mysite.wsgi:application"
        )
    factory = text.endswith("()")
    return AppSpec(text.removesuffix("()"), kind, factory)


def parse_mount(text: str) -> MountSpec:
    prefix, equals, target = text.partition("=")
    if not equals:
        raise ValueError("expected PREFIX=MODULE:ATTR, e.g. /blog=mysite.wsgi:application")
    _check_prefix(prefix)
    app = parse_app(target)
    return MountSpec(app.target, app.kind, app.factory, prefix)


def parse_health_prefix(text: str) -> str:
    """``auto``, ``none``, ``/`` or a prefix such as ``/-`` (giving /-/healthz, /-/readyz)."""
    if text in ("auto", "none", "/"):
        return text
    _check_prefix(text)
    return text


def _check_prefix(prefix: str) -> None:
    segments = prefix.split("/")
    if not prefix.startswith("/") or len(segments) < 2:
        raise ValueError(f"prefix {prefix!r} must start with / and name a path, e.g. /blog")
    if any(segment in ("", ".", "..") for segment in segments[1:]):
        raise ValueError(f"prefix {prefix!r} must look like /name (no trailing slash)")


def parse_directory(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_dir():
        raise ValueError("not a directory")
    return path


def parse_output_file(text: str) -> Path:
    path = parse_path(text)
    if not path.parent.is_dir():
        raise ValueError(f"{path.parent} is not a directory")
    return path


def parse_host_port(text: str) -> str:
    if _HOST_PORT.match(text) is None or int(text.rsplit(":", 1)[1]) > 65535:
        raise ValueError("expected HOST:PORT or [IPv6]:PORT")
    return text


def parse_log_format(text: str) -> str:
    if text not in ("text", "json"):
        raise ValueError("expected text or json")
    return text


LOG_LEVELS = ("debug", "info", "warning", "error")
LOOPS = ("auto", "asyncio", "uvloop")


def parse_loop(text: str) -> str:
    if text not in LOOPS:
        raise ValueError("expected one of " + ", ".join(LOOPS))
    return text


HTTP2_ENGINES = ("auto", "ngh2", "h2")


def parse_http2_engine(text: str) -> str:
    if text not in HTTP2_ENGINES:
        raise ValueError("expected one of " + ", ".join(HTTP2_ENGINES))
    return text


def parse_log_level(text: str) -> str:
    if text.lower() not in LOG_LEVELS:
        raise ValueError("expected one of " + ", ".join(LOG_LEVELS))
    return text.lower()


def parse_log_target(text: str) -> str:
    if not text.strip():
        raise ValueError("expected - (standard output) or a file path")
    if text != "-":
        parse_output_file(text)
    return text


_DOMAIN = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
)


def parse_domain(text: str) -> str:
    """A DNS name an http-01 challenge can prove: no wildcard, no IP address."""
    name = text.strip().lower().rstrip(".")
    if name.startswith("*."):
        raise ValueError("wildcard names need the dns-01 challenge, which hello does not do")
    if not _DOMAIN.match(name) or name.replace(".", "").isdigit():
        raise ValueError("expected a DNS name such as example.org")
    return name


def parse_email(text: str) -> str:
    local, at, domain = text.strip().partition("@")
    if not (local and at and "." in domain) or any(c.isspace() for c in text.strip()):
        raise ValueError("expected an e-mail address such as admin@example.org")
    return text.strip()


def parse_acme_directory(text: str) -> str:
    """An ACME directory URL, or a shortcut: letsencrypt, letsencrypt-staging."""
    url = ACME_SHORTCUTS.get(text.strip().lower(), text.strip())
    if not url.startswith("https://"):
        shortcuts = ", ".join(ACME_SHORTCUTS)
        raise ValueError(f"expected an https:// directory URL or one of {shortcuts}")
    return url


def parse_existing_file(text: str) -> Path:
    path = parse_path(text)
    if not path.is_file():
        raise ValueError("no such file")
    return path


def parse_header_text(text: str) -> str:
    """A header value: printable ASCII, nothing that could end the header early."""
    if not all(" " <= char <= "~" for char in text):
        raise ValueError("expected printable ASCII (letters, digits, spaces, punctuation)")
    return text.strip()


def default_state_dir() -> Path:
    """/var/lib/hello for root, else $XDG_STATE_HOME/hello (~/.local/state/hello)."""
    if os.geteuid() == 0:
        return Path("/var/lib/hello")
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "hello"
