"""The site's error page, as the Quart app and the Flask app both render it."""

from __future__ import annotations

from typing import Any

from werkzeug.exceptions import HTTPException

TEMPLATE = "error.html"


def error_page(error: HTTPException) -> tuple[dict[str, Any], int, list[tuple[str, str]]]:
    """The template's context for ``error``, its status, and the headers it carries (Allow,
    for a 405) but its content type, which the page replaces."""
    context = {"code": error.code, "name": error.name, "description": error.description}
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
    return context, error.code or 500, headers
