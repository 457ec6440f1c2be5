"""The legacy Flask app: plain, synchronous WSGI, unaware of the async server around it.

Mounted under /legacy; everything it builds with ``url_for`` carries that prefix because the
mount sets SCRIPT_NAME.
"""

from __future__ import annotations

import hashlib

from flask import Flask, Response, jsonify, request, url_for

GREETING = "Hello world, I am Flask!"
READ_CHUNK = 64 * 1024


def create_app() -> Flask:
    app = Flask(__name__, static_folder=None)

    @app.get("/")
    def index() -> str:
        upload = url_for("upload")
        return (
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>Legacy</title></head>\n<body><h1>{GREETING}</h1>\n"
            f'<p>POST a body to <a href="{upload}">{upload}</a> and I will count it.</p>'
            "\n</body></html>\n"
        )

    @app.post("/upload")
    def upload() -> Response:
        """Read the whole body in chunks; answer its size and SHA-256, proving it arrived."""
        digest = hashlib.sha256()
        size = 0
        while chunk := request.stream.read(READ_CHUNK):
            digest.update(chunk)
            size += len(chunk)
        return jsonify(bytes=size, sha256=digest.hexdigest())

    return app
