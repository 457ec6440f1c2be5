"""The legacy Flask app: plain, synchronous WSGI, unaware of the async server around it.

Mounted under /legacy; everything it builds with ``url_for`` carries that prefix because the
mount sets SCRIPT_NAME. It renders the site's shared templates (``hello.site``), so it looks
like the rest of the site.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import IO

from flask import Flask, Response, jsonify, render_template, request
from jinja2 import PackageLoader
from werkzeug.exceptions import HTTPException

from hello.site.errors import TEMPLATE, error_page

GREETING = "Hello world, I am Flask!"
READ_CHUNK = 64 * 1024


def create_app(asset_url: Callable[[str], str], max_body_size: int) -> Flask:
    """The app; ``asset_url`` gives a bundled file's URL, ``max_body_size`` is the bridge's
    limit (shown on the upload form)."""
    app = Flask(__name__, static_folder=None)
    app.jinja_loader = PackageLoader("hello.site", "templates")
    app.jinja_env.globals["asset_url"] = asset_url
    limit = _size(max_body_size)

    @app.get("/")
    def index() -> str:
        return render_template("legacy.html", greeting=GREETING)

    @app.get("/upload")
    def upload_form() -> str:
        return render_template("upload.html", limit=limit)

    @app.post("/upload")
    def upload() -> Response | tuple[str, int]:
        """A form's file: a page with its size and SHA-256. Any other body: the same as JSON."""
        if request.mimetype != "multipart/form-data":
            size, digest = _count(request.stream)
            return jsonify(bytes=size, sha256=digest)
        file = request.files.get("file")
        if file is None or not file.filename:
            return render_template("upload.html", limit=limit, problem="Choose a file."), 400
        size, digest = _count(file.stream)
        result = {"filename": file.filename, "bytes": size, "sha256": digest}
        return render_template("upload.html", limit=limit, result=result), 200

    @app.errorhandler(HTTPException)
    def error(problem: HTTPException) -> tuple[str, int, list[tuple[str, str]]]:
        context, status, headers = error_page(problem)
        return render_template(TEMPLATE, **context), status, headers

    return app


def _count(stream: IO[bytes]) -> tuple[int, str]:
    """Read ``stream`` in chunks: its size and SHA-256, proving it arrived whole."""
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(READ_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def _size(count: int) -> str:
    """``16 MiB``, ``64 KiB``, ``100 bytes``."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale and count % scale == 0:
            return f"{count // scale} {unit}"
    return f"{count:,} bytes"
