"""Probes: /healthz while the process serves, /readyz once started and until shutdown begins."""

from __future__ import annotations

from quart import Blueprint, Response

from hello.ops.lifecycle import Lifecycle


def create_health_blueprint(lifecycle: Lifecycle) -> Blueprint:
    health = Blueprint("health", __name__)

    @health.get("/healthz")
    async def healthz() -> Response:
        return _plain("ok", 200)

    @health.get("/readyz")
    async def readyz() -> Response:
        if lifecycle.ready:
            return _plain("ready", 200)
        return _plain("shutting down" if lifecycle.draining else "starting", 503)

    return health


def _plain(text: str, status: int) -> Response:
    return Response(text + "\n", status, {"Cache-Control": "no-store"}, mimetype="text/plain")
