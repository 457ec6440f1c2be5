"""The Quart root app of the bundled site: its dynamic pages."""

from __future__ import annotations

from collections.abc import Callable

from jinja2 import PackageLoader
from quart import Quart

from hello.ops.lifecycle import Lifecycle
from hello.ops.tasks import Scheduler
from hello.site.clock import Clock
from hello.site.web.pages import create_time_blueprint, pages


def create_app(
    lifecycle: Lifecycle,
    asset_path: Callable[[str], str],
    scheduler: Scheduler,
    clock: Clock,
) -> Quart:
    """The Quart app; the scheduled tasks run in the primary worker (``lifecycle.primary``).

    Templates link bundled files with ``asset_url("style.css")``, which gives the
    fingerprinted URL (``/static/style.3f2a9c1e.css``) that may be cached for a year.
    """
    app = Quart(__name__, static_folder=None)
    # Templates load through importlib, like the static files: from a wheel, zipapp or zip.
    app.jinja_loader = PackageLoader("hello.site.web", "templates")
    app.jinja_env.globals["asset_url"] = lambda name: "/static/" + asset_path(name)
    app.register_blueprint(pages)
    app.register_blueprint(create_time_blueprint(clock))

    @app.before_serving
    async def _started() -> None:
        scheduler.start(primary=lifecycle.primary)

    @app.after_serving
    async def _stopped() -> None:
        await scheduler.stop()

    return app
