"""The option schema: one frozen, typed Settings, each field declared once with its help text
and parser, from which flags, HELLO_* variables and TOML keys are all derived."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hello.config.parsers import (
    DEFAULT_BIND,
    LETS_ENCRYPT,
    LOG_LEVELS,
    AppSpec,
    MountSpec,
    Parser,
    default_state_dir,
    parse_acme_directory,
    parse_app,
    parse_bind,
    parse_bool,
    parse_count,
    parse_days,
    parse_directory,
    parse_domain,
    parse_email,
    parse_existing_file,
    parse_header_text,
    parse_health_prefix,
    parse_host_port,
    parse_http2_engine,
    parse_log_format,
    parse_log_level,
    parse_log_target,
    parse_loop,
    parse_mount,
    parse_output_file,
    parse_path,
    parse_port,
    parse_seconds,
    parse_size,
    parse_static,
    parse_workers,
)

ENV_PREFIX = "HELLO_"
CONFIG_ENV = "HELLO_CONFIG"


@dataclass(frozen=True)
class Option:
    """How one setting is spelled on each layer, parsed and explained."""

    name: str
    help: str
    parse: Parser
    metavar: str
    repeatable: bool
    default: Any
    positional: bool = False

    @property
    def flag(self) -> str:
        return self.metavar if self.positional else "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


def _option(
    help: str,
    parse: Parser,
    metavar: str,
    default: Any,
    repeatable: bool = False,
    positional: bool = False,
) -> Any:
    return field(
        default=default,
        metadata={"option": (help, parse, metavar, repeatable, positional)},
    )


# --- the schema ---


@dataclass(frozen=True)
class Settings:
    """Everything hello needs to run, validated; ``sources`` says where each value came from."""

    app: AppSpec | None = _option(
        "the WSGI or ASGI app to serve at the root: MODULE:ATTR, or MODULE:FACTORY() to call "
        "a factory; wsgi: or asgi: before MODULE overrides the detection. It owns every path "
        "but those of --static and --mount; without it, hello serves its bundled site",
        parse_app,
        "APP",
        None,
        positional=True,
    )
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
    self_signed: bool = _option(
        "HTTPS and HTTP/2 on this machine in one step: a certificate for localhost, "
        "127.0.0.1 and ::1 from a local CA that hello makes in --state-dir and reuses; the "
        "start logs the command that makes browsers trust the CA (needs the acme extra)",
        parse_bool,
        "BOOL",
        False,
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
        "the port clients reach HTTPS on, when a port mapping puts it elsewhere (e.g. 443): "
        "where --insecure-bind redirects to (default: the port of the first --bind) and the "
        "port HTTP/3's Alt-Svc names (default: the --quic-bind port)",
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
        "where ACME state (account key, certificate and key) and the --self-signed CA are "
        "kept (mode 0700)",
        parse_path,
        "DIR",
        default_state_dir(),
    )
    workers: int = _option("number of worker processes", parse_workers, "N", 1)
    max_requests: int = _option(
        "replace a worker after it has served this many requests (plus up to "
        "--max-requests-jitter): a fresh one starts, then the old one finishes what it has "
        "(0: never)",
        parse_count,
        "N",
        0,
    )
    max_requests_jitter: int = _option(
        "add a random 0 to N to each worker's --max-requests, so workers are not all "
        "replaced at once",
        parse_count,
        "N",
        0,
    )
    max_worker_memory: int = _option(
        "replace a worker whose resident memory exceeds SIZE (checked every second; "
        "512MiB, 1GiB...; 0: never)",
        parse_size,
        "SIZE",
        0,
    )
    loop: str = _option(
        "event loop: uvloop, asyncio, or auto (uvloop where it is installed, else asyncio)",
        parse_loop,
        "LOOP",
        "auto",
    )
    http2_engine: str = _option(
        "HTTP/2 engine: ngh2 (libnghttp2), h2 (pure Python, Hypercorn's protocol), or auto "
        "(ngh2 where it is installed, else h2)",
        parse_http2_engine,
        "ENGINE",
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
        "least severe server message to log: " + ", ".join(LOG_LEVELS),
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
        "largest request body a WSGI app (APP, /legacy, a --mount) accepts (bytes, or 64KiB, "
        "16MiB...); larger gets 413",
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
        "directory to put in front of the import path before APP and --mount apps are "
        "imported, ahead of the current directory (repeatable)",
        parse_directory,
        "DIR",
        (),
        repeatable=True,
    )
    wsgi_threads: int = _option(
        "threads each WSGI app (APP, /legacy and every WSGI --mount) may run requests on",
        parse_workers,
        "N",
        10,
    )
    health_prefix: str = _option(
        "where the public listeners answer the probes PREFIX/healthz and PREFIX/readyz: a "
        "prefix such as / or /-, or none; auto is / for the bundled site and none with an "
        "APP, so they never shadow an app's routes (--metrics-bind always answers them)",
        parse_health_prefix,
        "PREFIX",
        "auto",
    )
    reload: bool = _option(
        "development: restart the serving process when a .py file changes under the current "
        "directory, --pythonpath or --reload-dir, keeping the listening sockets (one worker; "
        "needs the reload extra)",
        parse_bool,
        "BOOL",
        False,
    )
    reload_dir: tuple[Path, ...] = _option(
        "with --reload, watch this directory instead of the current directory and "
        "--pythonpath (repeatable)",
        parse_directory,
        "DIR",
        (),
        repeatable=True,
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

    @property
    def health_path(self) -> str | None:
        """The public probes' prefix with its trailing slash (``/``, ``/-/``), or None."""
        prefix = self.health_prefix
        if prefix == "auto":
            prefix = "none" if self.app else "/"
        if prefix == "none":
            return None
        return prefix.rstrip("/") + "/"

    def source(self, name: str) -> str:
        """Where the value of ``name`` came from: a flag, a variable, a file key or 'default'."""
        return self.sources.get(name, "default")

    def describe(self, name: str) -> str:
        """``--certfile cert.pem``, ``HELLO_CERTFILE=cert.pem``: the value as the user gave it."""
        value = getattr(self, name)
        source = self.source(name)
        if isinstance(value, bool):
            if source.startswith("--"):
                return source if value else f"--no-{source[2:]}"  # as it was typed
            shown = "true" if value else "false"
        elif isinstance(value, tuple):
            shown = " ".join(_show(item) for item in value)
        else:
            shown = str(value)
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
        help, parse, metavar, repeatable, positional = item.metadata["option"]
        yield Option(item.name, help, parse, metavar, repeatable, item.default, positional)
