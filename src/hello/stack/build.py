"""The composed ASGI app, with only the layers the settings ask for.

At the root: APP when one is given, else the bundled site (its index page, ``/static``, the
Flask app at ``/legacy`` and the Quart app for the rest). Beside it, by prefix: every
``--static`` directory and every ``--mount`` app. Static files are served below any framework,
on the fast path; WSGI apps go through the buffering bridge; ASGI apps are called as they are,
and their lifespans run with the server's.

Around it, each only when needed: the probes (``--health-prefix``), HSTS (TLS), request ids
with the access log and metrics (``--access-log``, ``--metrics-bind``). Outermost, always: the
431 check of HTTP/2 and HTTP/3 heads, and the lifespans. A user's app alone, on plain HTTP with
neither log nor metrics, is called directly by hello's protocols (see ``Stack``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, cast

from hello.asgi_types import ASGIApp
from hello.config import Settings
from hello.errors import ConfigError
from hello.files.serve import IndexPage, StaticFiles
from hello.files.sources import DirectoryFiles
from hello.ops.lifecycle import Lifecycle
from hello.ops.metrics import Metrics
from hello.stack.health import Health
from hello.stack.hsts import Hsts
from hello.stack.imports import extend_path, import_app
from hello.stack.lifespan import LifespanGroup
from hello.stack.limits import HeaderLimit
from hello.stack.mounts import PrefixDispatcher, WSGIMount
from hello.stack.observe import Exchange, Observer, Watcher, access_logger
from hello.stack.recycle import RequestBudget

if TYPE_CHECKING:
    from hello.site.live import SiteStats

LEGACY_PREFIX = "/legacy"
STATIC_PREFIX = "/static"
SITE_ROUTES = ("/hello", "/time", "/live")  # the bundled Quart app's own pages


def route_prefixes(config: Settings) -> list[str]:
    """Every mount prefix ``config`` makes: the metrics' route groups."""
    own = [] if config.app else [LEGACY_PREFIX, STATIC_PREFIX]
    return own + [prefix for prefix, _ in config.static] + [m.prefix for m in config.mount]


def own_routes(config: Settings) -> list[str]:
    """Paths hello itself answers: the metrics' routes, which no mount may take."""
    routes = [] if config.app else list(SITE_ROUTES)
    if config.health_path is not None:
        routes += [config.health_path + "healthz", config.health_path + "readyz"]
    return routes


@dataclass(frozen=True)
class Stack:
    """The composed app, and the apps within it that hello's own protocols call: they do
    the work of its two outer layers themselves (the 431 of a head over --max-header-size,
    measured as it arrives; lifespans are the worker's), so each request skips them; HTTP/2
    also adds HSTS's header itself, a wrapped ``send`` less a request."""

    app: ASGIApp  # the whole stack: what Hypercorn's protocols and the lifespan call
    http1: ASGIApp  # under the outer layers
    http2: ASGIApp  # ...and under an outermost HSTS layer
    hsts: tuple[bytes, bytes] | None  # the header that layer adds over TLS
    max_header_size: int

    def behind(self, gate: Callable[[ASGIApp], ASGIApp]) -> Stack:
        """This stack behind ``gate`` (the plain-HTTP listeners' gate), on every path."""
        return replace(self, app=gate(self.app), http1=gate(self.http1), http2=gate(self.http2))


def build_app(
    config: Settings, lifecycle: Lifecycle | None = None, metrics: Metrics | None = None
) -> ASGIApp:
    """The composed app (see ``build_stack``)."""
    return build_stack(config, lifecycle, metrics).app


def build_stack(
    config: Settings, lifecycle: Lifecycle | None = None, metrics: Metrics | None = None
) -> Stack:
    lifecycle = lifecycle or Lifecycle()
    taken = own_routes(config)
    mounted: dict[str, ASGIApp] = {}
    lifespans: list[tuple[str, ASGIApp]] = []
    if config.app or config.mount:
        extend_path(config.pythonpath)
    stats: SiteStats | None = None
    if config.app is None:
        root, stats = _bundled_site(config, lifecycle, mounted, metrics)
        lifespans.append(("hello", root))
    else:
        label = config.describe("app")
        app, kind = import_app(config.app, label)
        root = _wsgi(app, config, "APP", metrics) if kind == "wsgi" else cast(ASGIApp, app)
        if kind == "asgi":
            lifespans.append((str(config.app), root))
    for prefix, directory in config.static:
        _claim(mounted, taken, prefix, f"{config.source('static')} {prefix}={directory}")
        source = DirectoryFiles(
            directory,
            follow_symlinks=config.static_follow_symlinks,
            dotfiles=config.static_dotfiles,
        )
        mounted[prefix] = StaticFiles(source)
    for spec in config.mount:
        label = f"{config.source('mount')} {spec}"
        _claim(mounted, taken, spec.prefix, label)
        app, kind = import_app(spec, label)
        if kind == "wsgi":
            mounted[spec.prefix] = _wsgi(app, config, spec.prefix, metrics)
        else:
            mounted[spec.prefix] = cast(ASGIApp, app)
            lifespans.append((spec.prefix, mounted[spec.prefix]))
    composed = PrefixDispatcher(root, mounted) if mounted else root
    if stats is not None:  # the bundled site
        index = IndexPage(cast(StaticFiles, mounted[STATIC_PREFIX]), "index.html", composed)
        composed = stats.counting(index)
    if config.health_path is not None:
        composed = Health(composed, config.health_path, lifecycle)
    hsts: Hsts | None = None
    if config.hsts_max_age and (config.tls or config.acme):
        composed = hsts = Hsts(composed, config.hsts_max_age)
    log = _access_log(config)
    watchers: list[Watcher] = [metrics] if metrics is not None else []
    if log is not None or watchers:
        composed = Observer(composed, log, watchers)
    if config.max_requests:
        composed = RequestBudget(
            composed, lifecycle, config.max_requests, config.max_requests_jitter
        )
    outer = LifespanGroup(HeaderLimit(composed, config.max_header_size), lifespans, lifecycle)
    if hsts is not None and composed is hsts:
        return Stack(outer, composed, hsts.app, hsts.header, config.max_header_size)
    return Stack(outer, composed, composed, None, config.max_header_size)


def _bundled_site(
    config: Settings,
    lifecycle: Lifecycle,
    mounted: dict[str, ASGIApp],
    metrics: Metrics | None,
) -> tuple[ASGIApp, SiteStats]:
    """The bundled site's Quart app (its root), with /static and /legacy put in ``mounted``;
    and what its live view counts, which wraps the whole site."""
    from hello.files.sources import BundledSite
    from hello.ops.tasks import Scheduler
    from hello.site import legacy, web
    from hello.site.clock import Clock
    from hello.site.live import SiteStats

    site = BundledSite.load()
    stats = SiteStats()
    scheduler = Scheduler()
    clock = Clock(scheduler, config.time_file)

    def asset_url(name: str) -> str:
        """A bundled file's fingerprinted URL, as both apps' templates link it."""
        return f"{STATIC_PREFIX}/{site.asset_path(name)}"

    quart = cast(ASGIApp, web.create_app(lifecycle, asset_url, scheduler, clock, stats))
    flask = legacy.create_app(asset_url, config.max_body_size)
    mounted[LEGACY_PREFIX] = _wsgi(flask, config, LEGACY_PREFIX, metrics)
    mounted[STATIC_PREFIX] = StaticFiles(site)
    return quart, stats


def _access_log(config: Settings) -> Callable[[Exchange], None] | None:
    if not config.access_log:
        return None
    try:
        return access_logger(config.access_log, config.log_format)
    except OSError as error:
        where = config.describe("access_log")
        raise ConfigError(f"cannot open {where}: {error.strerror or error}") from None


def _wsgi(app: object, config: Settings, name: str, metrics: Metrics | None) -> ASGIApp:
    return WSGIMount(
        app,
        max_body_size=config.max_body_size,
        threads=config.wsgi_threads,
        name=name,
        metrics=metrics,
    )


def _claim(mounted: dict[str, ASGIApp], taken: list[str], prefix: str, label: str) -> None:
    if prefix in mounted or prefix in taken:
        raise ConfigError(f"{label}: {prefix} is already served by hello itself")
