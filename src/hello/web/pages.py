"""The greeting page."""

from __future__ import annotations

from quart import Blueprint, render_template, request

pages = Blueprint("pages", __name__)

MAX_NAME = 100


@pages.get("/hello")
async def hello() -> str:
    """Greet ``?name=`` (escaped by Jinja's autoescaping), or the world."""
    name = request.args.get("name", "").strip()[:MAX_NAME] or "world"
    return await render_template("hello.html", name=name)
