"""The Quart root app of the bundled site: its dynamic pages, its error pages, its live view."""

from __future__ import annotations

from collections.abc import Callable

from jinja2 import PackageLoader
from quart import Quart, Response, render_template
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException

from hello.ops.lifecycle import Lifecycle
from hello.ops.tasks import Scheduler
from hello.site.clock import Clock
from hello.site.errors import TEMPLATE, error_page
from hello.site.live import SiteStats, create_live_blueprint
from hello.site.web.pages import create_time_blueprint, pages


def create_app(
    lifecycle: Lifecycle,
    asset_url: Callable[[str], str],
    scheduler: Scheduler,
    clock: Clock,
    stats: SiteStats,
) -> Quart:
    """The Quart app; the scheduled tasks run in the primary worker (``lifecycle.primary``).

    Templates link bundled files with ``asset_url("style.css")``, which gives the
    fingerprinted URL (``/static/style.3f2a9c1e.css``) that may be cached for a year.
    """
    app = Quart(__name__, static_folder=None)
    # Templates load through importlib, like the static files: from a wheel, zipapp or zip.
    app.jinja_loader = PackageLoader("hello.site", "templates")
    app.jinja_env.globals["asset_url"] = asset_url
    app.register_blueprint(pages)
    app.register_blueprint(create_time_blueprint(clock))
    app.register_blueprint(create_live_blueprint(stats, clock, lifecycle))
    app.register_error_handler(HTTPException, _error_page)

    @app.before_serving
    async def _started() -> None:
        scheduler.start(primary=lifecycle.primary)

    @app.after_serving
    async def _stopped() -> None:
        await scheduler.stop()

    return app


async def _error_page(error: HTTPException) -> Response:
    """404, 405, 500…: the site's own page, with the headers the error carries (Allow).

    Also the answer to an exception in a page, which Quart logs and then hands here as a
    500 (its InternalServerError)."""
    context, status, headers = error_page(error)
    page = await render_template(TEMPLATE, **context)
    return Response(page, status, Headers(headers), mimetype="text/html")
