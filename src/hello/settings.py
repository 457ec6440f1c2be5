"""One frozen, typed Settings object; flags, HELLO_* variables and TOML keys all derive from it.

Each option is declared once, as a dataclass field whose metadata carries its help text and
parser. Values come in layers -- defaults < TOML file < environment < flags -- and every value
remembers where it came from, so an error can name the flag, variable or file key at fault.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hello.errors import ConfigError

ENV_PREFIX = "HELLO_"
CONFIG_ENV = "HELLO_CONFIG"
DEFAULT_BIND = "127.0.0.1:8000"
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
ACME_SHORTCUTS = {"letsencrypt": LETS_ENCRYPT, "letsencrypt-staging": LETS_ENCRYPT_STAGING}

Parser = Callable[[str], Any]


@dataclass(frozen=True)
class Option:
    """How one setting is spelled on each layer, parsed and explained."""

    name: str
    help: str
    parse: Parser
    metavar: str
    repeatable: bool
    default: Any

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


# --- parsers: a string from a flag, variable or file in, a value out, ValueError if bad ---


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


_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
MOUNT_KINDS = ("auto", "wsgi", "asgi")


@dataclass(frozen=True)
class MountSpec:
    """``--mount PREFIX=[wsgi:|asgi:]MODULE:ATTR``: an app to import and serve under PREFIX."""

    prefix: str
    target: str  # MODULE:ATTR
    kind: str = "auto"

    def __str__(self) -> str:
        kind = "" if self.kind == "auto" else f"{self.kind}:"
        return f"{self.prefix}={kind}{self.target}"


def parse_mount(text: str) -> MountSpec:
    prefix, equals, target = text.partition("=")
    if not equals:
        raise ValueError("expected PREFIX=MODULE:ATTR, e.g. /blog=mysite.wsgi:application")
    _check_prefix(prefix)
    kind = "auto"
    head, colon, rest = target.partition(":")
    if colon and head in MOUNT_KINDS:
        kind, target = head, rest
    if not _TARGET.match(target):
        raise ValueError(f"{target!r} is not MODULE:ATTR, e.g. mysite.wsgi:application")
    return MountSpec(prefix, target, kind)


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


_LOG_LEVELS = ("debug", "info", "warning", "error")
LOOPS = ("auto", "asyncio", "uvloop")


def parse_loop(text: str) -> str:
    if text not in LOOPS:
        raise ValueError("expected one of " + ", ".join(LOOPS))
    return text


def parse_log_level(text: str) -> str:
    if text.lower() not in _LOG_LEVELS:
        raise ValueError("expected one of " + ", ".join(_LOG_LEVELS))
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


def _option(help: str, parse: Parser, metavar: str, default: Any, repeatable: bool = False) -> Any:
    return field(
        default=default,
        metadata={"option": (help, parse, metavar, repeatable)},
    )


# --- the schema ---


@dataclass(frozen=True)
class Settings:
    """Everything hello needs to run, validated; ``sources`` says where each value came from."""

    bind: tuple[str, ...] = _option(
        "address to listen on: HOST:PORT, [IPv6]:PORT, unix:/path or fd://N (repeatable); "
        "TLS on every bind when --certfile and --keyfile are given",
        parse_bind,
        "ADDRESS",
        (DEFAULT_BIND,),
        repeatable=True,
    )
    certfile: Path | None = _option(
        "PEM certificate chain for TLS (needs --keyfile)", parse_path, "FILE", None
    )
    keyfile: Path | None = _option(
        "PEM private key for TLS (needs --certfile)", parse_path, "FILE", None
    )
    insecure_bind: tuple[str, ...] = _option(
        "also listen for plain HTTP here: ACME http-01 challenges are answered, everything "
        "else is redirected (308) to https with its path and query (repeatable; needs TLS)",
        parse_bind,
        "ADDRESS",
        (),
        repeatable=True,
    )
    https_port: int | None = _option(
        "the port --insecure-bind redirects to (default: the port of the first --bind); "
        "set it when a port mapping puts HTTPS elsewhere, e.g. 443",
        parse_port,
        "PORT",
        None,
    )
    acme_domain: tuple[str, ...] = _option(
        "obtain and renew the TLS certificate from an ACME CA (Let's Encrypt by default) for "
        "this name (repeatable: one certificate for all; needs --insecure-bind reachable on "
        "port 80 of every name)",
        parse_domain,
        "NAME",
        (),
        repeatable=True,
    )
    acme_email: str | None = _option(
        "contact address for the ACME account (expiry warnings)", parse_email, "EMAIL", None
    )
    acme_directory: str = _option(
        "the ACME CA's directory URL, or letsencrypt or letsencrypt-staging",
        parse_acme_directory,
        "URL",
        LETS_ENCRYPT,
    )
    acme_ca_bundle: Path | None = _option(
        "PEM file of CA certificates to trust for the ACME server's own HTTPS (private or "
        "test CAs); default: the system's",
        parse_existing_file,
        "FILE",
        None,
    )
    acme_renew_days: float = _option(
        "renew when fewer than this many days of validity remain; 0: when a third of the "
        "lifetime remains, or earlier if the CA's renewal information says so",
        parse_days,
        "DAYS",
        0.0,
    )
    state_dir: Path = _option(
        "where ACME state is kept: account key, certificate and key (mode 0700)",
        parse_path,
        "DIR",
        default_state_dir(),
    )
    workers: int = _option("number of worker processes", parse_workers, "N", 1)
    loop: str = _option(
        "event loop: uvloop, asyncio, or auto (uvloop where it is installed, else asyncio)",
        parse_loop,
        "LOOP",
        "auto",
    )
    hsts_max_age: int = _option(
        "Strict-Transport-Security max-age sent on TLS responses, in seconds; 0 sends none",
        parse_count,
        "SECONDS",
        31536000,
    )
    quic_bind: tuple[str, ...] = _option(
        "also serve HTTP/3 over QUIC on this UDP address (repeatable; needs TLS, one worker "
        "and the h3 extra); TLS responses then advertise it with Alt-Svc",
        parse_host_port,
        "HOST:PORT",
        (),
        repeatable=True,
    )
    metrics_bind: str | None = _option(
        "serve Prometheus metrics on this separate address (never on the public listeners)",
        parse_host_port,
        "HOST:PORT",
        None,
    )
    access_log: str | None = _option(
        "write an access log line per request to FILE, or - for standard output",
        parse_log_target,
        "FILE",
        None,
    )
    log_format: str = _option(
        "access log lines as text (combined format) or json (one object a line)",
        parse_log_format,
        "FORMAT",
        "text",
    )
    error_log: str = _option(
        "where server messages go: - for standard error, or a file", parse_log_target, "FILE", "-"
    )
    log_level: str = _option(
        "least severe server message to log: " + ", ".join(_LOG_LEVELS),
        parse_log_level,
        "LEVEL",
        "info",
    )
    graceful_timeout: float = _option(
        "on SIGTERM or SIGINT, seconds to let in-flight requests finish",
        parse_seconds,
        "SECONDS",
        10.0,
    )
    shutdown_delay: float = _option(
        "on SIGTERM or SIGINT, seconds to keep accepting while /readyz answers 503, so a load "
        "balancer can take this process out of rotation first",
        parse_seconds,
        "SECONDS",
        0.0,
    )
    header_timeout: float = _option(
        "seconds a connection may take to complete its TLS handshake and each request's "
        "headers, and may stay idle between requests; then it is closed",
        parse_seconds,
        "SECONDS",
        10.0,
    )
    min_body_rate: int = _option(
        "bytes a second a request body must arrive at, on average, once --body-rate-grace "
        "has passed; a slower client is disconnected (0: no minimum)",
        parse_count,
        "BYTES",
        240,
    )
    body_rate_grace: float = _option(
        "seconds of waiting for a request body before --min-body-rate applies",
        parse_seconds,
        "SECONDS",
        5.0,
    )
    max_header_size: int = _option(
        "largest request head (request line and headers) accepted; larger gets 431",
        parse_size,
        "SIZE",
        16 * 1024,
    )
    server_header: str = _option(
        "the Server header of every response; empty to send none",
        parse_header_text,
        "TEXT",
        "hello",
    )
    max_body_size: int = _option(
        "largest request body the legacy WSGI app accepts (bytes, or 64KiB, 16MiB...); "
        "larger gets 413",
        parse_size,
        "SIZE",
        16 * 1024 * 1024,
    )
    static: tuple[tuple[str, Path], ...] = _option(
        "serve the files of directory DIR under the URL prefix PREFIX, with the bundled "
        "site's rules (repeatable)",
        parse_static,
        "PREFIX=DIR",
        (),
        repeatable=True,
    )
    static_follow_symlinks: bool = _option(
        "let --static directories serve symlinks that point outside them",
        parse_bool,
        "BOOL",
        False,
    )
    static_dotfiles: bool = _option(
        "let --static directories serve files and folders whose name starts with a dot",
        parse_bool,
        "BOOL",
        False,
    )
    mount: tuple[MountSpec, ...] = _option(
        "serve the WSGI or ASGI app MODULE:ATTR under PREFIX (repeatable; wsgi: or asgi: "
        "before MODULE overrides the detection)",
        parse_mount,
        "PREFIX=MODULE:ATTR",
        (),
        repeatable=True,
    )
    pythonpath: tuple[Path, ...] = _option(
        "directory to put in front of the import path before --mount apps are imported "
        "(repeatable)",
        parse_directory,
        "DIR",
        (),
        repeatable=True,
    )
    wsgi_threads: int = _option(
        "threads each WSGI app (/legacy and every WSGI --mount) may run requests on",
        parse_workers,
        "N",
        10,
    )
    time_file: Path | None = _option(
        "every second, also write the current time (ISO 8601) to FILE, atomically",
        parse_output_file,
        "FILE",
        None,
    )
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def tls(self) -> bool:
        return self.certfile is not None and self.keyfile is not None

    @property
    def acme(self) -> bool:
        return bool(self.acme_domain)

    def source(self, name: str) -> str:
        """Where the value of ``name`` came from: a flag, a variable, a file key or 'default'."""
        return self.sources.get(name, "default")

    def describe(self, name: str) -> str:
        """``--certfile cert.pem``, ``HELLO_CERTFILE=cert.pem``: the value as the user gave it."""
        value = getattr(self, name)
        source = self.source(name)
        shown = " ".join(_show(item) for item in value) if isinstance(value, tuple) else str(value)
        if source.startswith(ENV_PREFIX):
            return f"{source}={shown}"
        return f"{source} {shown}"


def _show(item: object) -> str:
    if isinstance(item, tuple):
        return "=".join(str(part) for part in item)  # a --static PREFIX=DIR pair
    return str(item)


def options() -> Iterator[Option]:
    """The schema, in declaration order: one Option for each setting."""
    for item in dataclasses.fields(Settings):
        if "option" not in item.metadata:
            continue
        help, parse, metavar, repeatable = item.metadata["option"]
        default = item.default
        yield Option(item.name, help, parse, metavar, repeatable, default)


# --- loading ---


def load(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Build Settings from defaults < ``config_file`` < HELLO_* in ``environ`` < ``flags``.

    ``flags`` maps option names to what the command line gave: a string, or a list of strings
    for repeatable options. ``config_file`` falls back to ``$HELLO_CONFIG``.
    """
    environ = environ or {}
    flags = flags or {}
    schema = {option.name: option for option in options()}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}

    if config_file is None and environ.get(CONFIG_ENV):
        config_file = Path(environ[CONFIG_ENV])
    if config_file is not None:
        for name, (raw, where) in _read_toml(config_file, schema).items():
            values[name] = _parse(schema[name], raw, where)
            sources[name] = where
    for name, (raw, where) in _read_environ(environ, schema).items():
        values[name] = _parse(schema[name], raw, where)
        sources[name] = where
    for name, raw in flags.items():
        option = schema[name]
        values[name] = _parse(option, raw, option.flag)
        sources[name] = option.flag

    settings = Settings(**values, sources=sources)
    _check(settings)
    return settings


def _parse(option: Option, raw: Any, where: str) -> Any:
    items = raw if isinstance(raw, list) else [raw]
    if not option.repeatable and len(items) != 1:
        raise ConfigError(f"{where}: expected one value, got {len(items)}")
    parsed = []
    for item in items:
        text = _as_text(item, where)
        try:
            parsed.append(option.parse(text))
        except ValueError as error:
            raise ConfigError(f"{where} {text!r}: {error}") from None
    if option.repeatable:
        if not parsed and option.default:
            raise ConfigError(f"{where}: expected at least one value")
        return tuple(parsed)
    return parsed[0]


def _as_text(item: Any, where: str) -> str:
    if isinstance(item, dict):
        return _mount_table(item, where)
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int | float | str):
        return str(item)
    raise ConfigError(f"{where}: expected a string or a number, got {type(item).__name__}")


def _mount_table(table: dict[str, Any], where: str) -> str:
    """A TOML ``[[mount]]`` table (prefix, app, and optionally kind) as a --mount value."""
    unknown = set(table) - {"prefix", "app", "kind"}
    if unknown or not {"prefix", "app"} <= set(table):
        raise ConfigError(
            f"{where}: a [[mount]] table takes prefix, app and optionally kind "
            f"(wsgi, asgi or auto); got {', '.join(sorted(table))}"
        )
    kind = str(table.get("kind", "auto"))
    return f"{table['prefix']}={'' if kind == 'auto' else kind + ':'}{table['app']}"


def _read_environ(environ: Mapping[str, str], schema: Mapping[str, Option]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    by_env = {option.env: option for option in schema.values()}
    for key, text in environ.items():
        if not key.startswith(ENV_PREFIX) or key == CONFIG_ENV:
            continue
        option = by_env.get(key)
        if option is None:
            known = ", ".join(sorted(by_env))
            raise ConfigError(f"unknown environment variable {key} (known: {known})")
        raw: Any = [part.strip() for part in text.split(",")] if option.repeatable else text
        found[option.name] = (raw, key)
    return found


def _read_toml(path: Path, schema: Mapping[str, Option]) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except OSError as error:
        raise ConfigError(f"config file {path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path}: not valid TOML: {error}") from None
    found: dict[str, Any] = {}
    for key, raw in data.items():
        name = key.replace("-", "_")
        if name not in schema:
            known = ", ".join(schema)
            raise ConfigError(f"unknown key {key!r} in config file {path} (known: {known})")
        found[name] = (raw, f"{key} in {path}")
    return found


def _check(settings: Settings) -> None:
    """Reject combinations that cannot work, before anything listens."""
    prefixes = [prefix for prefix, _ in settings.static] + [m.prefix for m in settings.mount]
    for prefix in prefixes:
        if prefixes.count(prefix) > 1:
            named = [settings.source(n) for n in ("static", "mount") if getattr(settings, n)]
            raise ConfigError(f"{' and '.join(named)}: prefix {prefix} is given twice")
    _check_acme(settings)
    if settings.quic_bind and not (settings.certfile or settings.keyfile or settings.acme):
        raise ConfigError(
            f"{settings.describe('quic_bind')}: HTTP/3 needs TLS; set --certfile and --keyfile"
        )
    if settings.quic_bind and settings.workers > 1:
        raise ConfigError(
            f"{settings.describe('quic_bind')} with {settings.describe('workers')}: QUIC "
            "works with one worker only (Hypercorn's QUIC fails with several); use --workers 1"
        )
    if (settings.certfile is None) != (settings.keyfile is None):
        given, missing = ("keyfile", "certfile")
        if settings.keyfile is None:
            given, missing = ("certfile", "keyfile")
        raise ConfigError(
            f"{settings.describe(given)} is set but {missing} is not: TLS needs both "
            f"(set --{missing}, {ENV_PREFIX}{missing.upper()} or {missing} in the config file); "
            "hello never falls back to plain HTTP"
        )


def _check_acme(settings: Settings) -> None:
    if settings.acme and (settings.certfile or settings.keyfile):
        given = "certfile" if settings.certfile else "keyfile"
        raise ConfigError(
            f"{settings.describe('acme_domain')} and {settings.describe(given)}: choose one, "
            "a certificate from ACME or from files"
        )
    if settings.acme and not settings.insecure_bind:
        raise ConfigError(
            f"{settings.describe('acme_domain')} needs --insecure-bind: the CA checks each "
            "name over plain HTTP on port 80 (http-01)"
        )
    if settings.insecure_bind and not (settings.certfile or settings.keyfile or settings.acme):
        raise ConfigError(
            f"{settings.describe('insecure_bind')} redirects to HTTPS, which needs "
            "--certfile and --keyfile or --acme-domain"
        )
    for name in ("acme_email", "acme_ca_bundle", "acme_renew_days"):
        if settings.source(name) != "default" and not settings.acme:
            raise ConfigError(f"{settings.describe(name)} is only used with --acme-domain")
