from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Route

events: list[str] = []


async def hi(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "framework": "starlette",
            "prefix": request.scope["root_path"],
            "url": request.url_for("hi").path,
            "lifespan": events,
        }
    )


async def source(request: Request) -> FileResponse:
    """This file, by Starlette's FileResponse: ASGI path send where the server offers it."""
    return FileResponse(__file__, media_type="text/plain")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    events.append("startup")
    yield
    events.append("shutdown")


app = Starlette(
    routes=[Route("/hi", hi, name="hi"), Route("/source", source, methods=["GET", "HEAD"])],
    lifespan=lifespan,
)
