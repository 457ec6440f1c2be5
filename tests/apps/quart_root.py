from typing import Any

from quart import Quart, request, url_for, websocket


def create_app() -> Quart:
    """The application factory, as Quart's and Flask's documentation write it."""
    app = Quart(__name__)
    seen: list[str] = []

    @app.before_serving
    async def started() -> None:
        seen.append("startup")

    @app.get("/")
    async def index() -> dict[str, Any]:
        return {
            "framework": "quart",
            "url": url_for("index"),
            "root": request.root_path,
            "lifespan": seen,
        }

    @app.post("/echo")
    async def echo() -> dict[str, Any]:
        return {"size": len(await request.get_data())}

    @app.websocket("/ws")
    async def ws() -> None:
        while True:
            message = await websocket.receive()
            await websocket.send(f"echo: {message!s}")

    return app
