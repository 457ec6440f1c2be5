"""The Quart root app: dynamic pages and health checks."""

from __future__ import annotations

from jinja2 import PackageLoader
from quart import Quart

from hello.lifecycle import Lifecycle
from hello.web.health import create_health_blueprint
from hello.web.pages import pages


def create_app(lifecycle: Lifecycle) -> Quart:
    """The Quart app; ``lifecycle`` is marked started once the app has started serving."""
    app = Quart(__name__, static_folder=None)
    # Templates load through importlib, like the static files: from a wheel, zipapp or zip.
    app.jinja_loader = PackageLoader("hello.web", "templates")
    app.register_blueprint(pages)
    app.register_blueprint(create_health_blueprint(lifecycle))

    @app.before_serving
    async def _started() -> None:
        lifecycle.started = True

    return app
