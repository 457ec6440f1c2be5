from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
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


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    events.append("startup")
    yield
    events.append("shutdown")


app = Starlette(routes=[Route("/hi", hi, name="hi")], lifespan=lifespan)
