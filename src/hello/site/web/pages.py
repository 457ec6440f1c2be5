"""The greeting page."""

from __future__ import annotations

from quart import Blueprint, Response, render_template, request

from hello.site.clock import Clock

pages = Blueprint("pages", __name__)

MAX_NAME = 100


@pages.get("/hello")
async def hello() -> str:
    """Greet ``?name=`` (escaped by Jinja's autoescaping), or the world."""
    name = request.args.get("name", "").strip()[:MAX_NAME] or "world"
    return await render_template("hello.html", name=name)


def create_time_blueprint(clock: Clock) -> Blueprint:
    times = Blueprint("time", __name__)

    @times.get("/time")
    async def time() -> Response:
        """The time the scheduled task last recorded, ISO 8601 (503 before its first run)."""
        headers = {"Cache-Control": "no-store"}
        if clock.now is None:
            return Response("not yet recorded\n", 503, headers, mimetype="text/plain")
        return Response(clock.now.isoformat() + "\n", 200, headers, mimetype="text/plain")

    return times
