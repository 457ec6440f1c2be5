"""The composed ASGI app: the index page, then mounts by prefix, then the Quart root app.

Mounts: ``/static`` (the bundled site), ``/legacy`` (the Flask app), every ``--static``
directory and every ``--mount`` app. Static files are served below Quart, on the fast path;
WSGI apps go through the buffering bridge; ASGI apps are called as they are, and their
lifespans run with the server's.
"""

from __future__ import annotations

from typing import cast

from hello.asgi_types import ASGIApp
from hello.config import Settings
from hello.errors import ConfigError
from hello.files.serve import IndexPage, StaticFiles
from hello.files.sources import BundledSite, DirectoryFiles
from hello.ops.lifecycle import Lifecycle
from hello.ops.metrics import Metrics
from hello.ops.tasks import Scheduler
from hello.site import legacy, web
from hello.site.clock import Clock
from hello.stack.imports import extend_path, import_app
from hello.stack.lifespan import LifespanGroup
from hello.stack.limits import HeaderLimit
from hello.stack.mounts import PrefixDispatcher, WSGIMount
from hello.stack.observe import Observer, Watcher, access_logger

LEGACY_PREFIX = "/legacy"
STATIC_PREFIX = "/static"
OWN_ROUTES = ("/hello", "/healthz", "/readyz", "/time")


def route_prefixes(config: Settings) -> list[str]:
    """Every mount prefix ``config`` makes: the metrics' route groups."""
    own = [LEGACY_PREFIX, STATIC_PREFIX]
    return own + [prefix for prefix, _ in config.static] + [m.prefix for m in config.mount]


def build_app(
    config: Settings, lifecycle: Lifecycle | None = None, metrics: Metrics | None = None
) -> ASGIApp:
    site = BundledSite.load()
    scheduler = Scheduler()
    clock = Clock(scheduler, config.time_file)
    quart = web.create_app(lifecycle or Lifecycle(), site.asset_path, scheduler, clock)
    bundled = StaticFiles(site)
    mounted: dict[str, ASGIApp] = {
        LEGACY_PREFIX: _wsgi(legacy.create_app(), config, LEGACY_PREFIX, metrics),
        STATIC_PREFIX: bundled,
    }
    for prefix, directory in config.static:
        _claim(mounted, prefix, f"{config.source('static')} {prefix}={directory}")
        source = DirectoryFiles(
            directory,
            follow_symlinks=config.static_follow_symlinks,
            dotfiles=config.static_dotfiles,
        )
        mounted[prefix] = StaticFiles(source)
    lifespans: list[tuple[str, ASGIApp]] = []
    extend_path(config.pythonpath)
    for spec in config.mount:
        label = f"{config.source('mount')} {spec}"
        _claim(mounted, spec.prefix, label)
        app, kind = import_app(spec, label)
        if kind == "wsgi":
            mounted[spec.prefix] = _wsgi(app, config, spec.prefix, metrics)
        else:
            mounted[spec.prefix] = cast(ASGIApp, app)
        if kind == "asgi":
            lifespans.append((spec.prefix, mounted[spec.prefix]))
    composed = IndexPage(bundled, "index.html", PrefixDispatcher(cast(ASGIApp, quart), mounted))
    log = None
    if config.access_log:
        try:
            log = access_logger(config.access_log, config.log_format)
        except OSError as error:
            where = config.describe("access_log")
            raise ConfigError(f"cannot open {where}: {error.strerror or error}") from None
    watchers: list[Watcher] = [metrics] if metrics is not None else []
    limited = HeaderLimit(composed, config.max_header_size)
    return Observer(LifespanGroup(limited, lifespans), log, watchers, config.hsts_max_age)


def _wsgi(app: object, config: Settings, name: str, metrics: Metrics | None) -> ASGIApp:
    return WSGIMount(
        app,
        max_body_size=config.max_body_size,
        threads=config.wsgi_threads,
        name=name,
        metrics=metrics,
    )


def _claim(mounted: dict[str, ASGIApp], prefix: str, label: str) -> None:
    if prefix in mounted or prefix in OWN_ROUTES:
        raise ConfigError(f"{label}: {prefix} is already served by hello itself")
