"""The Quart root app: dynamic pages and health checks."""

from __future__ import annotations

from collections.abc import Callable

from jinja2 import PackageLoader
from quart import Quart

from hello.ops.lifecycle import Lifecycle
from hello.ops.tasks import Scheduler
from hello.site.clock import Clock
from hello.site.web.health import create_health_blueprint
from hello.site.web.pages import create_time_blueprint, pages


def create_app(
    lifecycle: Lifecycle,
    asset_path: Callable[[str], str],
    scheduler: Scheduler,
    clock: Clock,
) -> Quart:
    """The Quart app; ``lifecycle`` is marked started once the app has started serving.

    Templates link bundled files with ``asset_url("style.css")``, which gives the
    fingerprinted URL (``/static/style.3f2a9c1e.css``) that may be cached for a year.
    """
    app = Quart(__name__, static_folder=None)
    # Templates load through importlib, like the static files: from a wheel, zipapp or zip.
    app.jinja_loader = PackageLoader("hello.site.web", "templates")
    app.jinja_env.globals["asset_url"] = lambda name: "/static/" + asset_path(name)
    app.register_blueprint(pages)
    app.register_blueprint(create_health_blueprint(lifecycle))
    app.register_blueprint(create_time_blueprint(clock))

    @app.before_serving
    async def _started() -> None:
        scheduler.start(primary=lifecycle.primary)
        lifecycle.started = True

    @app.after_serving
    async def _stopped() -> None:
        await scheduler.stop()

    return app
