"""Cross-checks: combinations of settings that cannot work, refused before anything listens."""

from __future__ import annotations

from hello.config.schema import ENV_PREFIX, Settings
from hello.errors import ConfigError


def check(settings: Settings) -> None:
    """Reject combinations that cannot work, before anything listens."""
    prefixes = [prefix for prefix, _ in settings.static] + [m.prefix for m in settings.mount]
    for prefix in prefixes:
        if prefixes.count(prefix) > 1:
            named = [settings.source(n) for n in ("static", "mount") if getattr(settings, n)]
            raise ConfigError(f"{' and '.join(named)}: prefix {prefix} is given twice")
    _check_acme(settings)
    _check_self_signed(settings)
    _check_reload(settings)
    _check_recycling(settings)
    if settings.quic_bind and not _wants_tls(settings):
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
    if settings.insecure_bind and not _wants_tls(settings):
        raise ConfigError(
            f"{settings.describe('insecure_bind')} redirects to HTTPS, which needs "
            "--certfile and --keyfile, --acme-domain or --self-signed"
        )
    for name in ("acme_email", "acme_ca_bundle", "acme_renew_days"):
        if settings.source(name) != "default" and not settings.acme:
            raise ConfigError(f"{settings.describe(name)} is only used with --acme-domain")


def _check_self_signed(settings: Settings) -> None:
    if not settings.self_signed:
        return
    for name in ("certfile", "keyfile", "acme_domain"):
        if getattr(settings, name):
            raise ConfigError(
                f"{settings.describe('self_signed')} and {settings.describe(name)}: choose one "
                "source of the certificate"
            )


def _wants_tls(settings: Settings) -> bool:
    """Whether some setting asks for TLS (a pair, ACME, the local CA), complete or not."""
    return bool(settings.certfile or settings.keyfile or settings.acme or settings.self_signed)


def _check_recycling(settings: Settings) -> None:
    limits = [name for name in ("max_requests", "max_worker_memory") if getattr(settings, name)]
    if settings.max_requests_jitter and not settings.max_requests:
        raise ConfigError(
            f"{settings.describe('max_requests_jitter')} is only used with --max-requests"
        )
    if limits and settings.reload:
        raise ConfigError(
            f"{settings.describe(limits[0])} with {settings.describe('reload')}: --reload "
            "already replaces the serving process; recycling is for production"
        )
    if limits and settings.quic_bind:
        raise ConfigError(
            f"{settings.describe(limits[0])} with {settings.describe('quic_bind')}: HTTP/3 "
            "needs one process, and a recycled worker overlaps with its successor"
        )


def _check_reload(settings: Settings) -> None:
    if settings.reload and settings.workers > 1:
        raise ConfigError(
            f"{settings.describe('reload')} with {settings.describe('workers')}: reloading "
            "restarts one serving process; use --workers 1 in development"
        )
    if settings.reload_dir and not settings.reload:
        raise ConfigError(f"{settings.describe('reload_dir')} is only used with --reload")
