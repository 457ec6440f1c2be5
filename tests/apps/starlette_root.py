from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

seen: list[str] = []


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    seen.append("startup")
    yield


async def index(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "framework": "starlette",
            "url": request.url_for("index").path,
            "root": request.scope.get("root_path", ""),
            "lifespan": seen,
        }
    )


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"size": len(await request.body())})


app = Starlette(
    routes=[Route("/", index, name="index"), Route("/echo", echo, methods=["POST"])],
    lifespan=lifespan,
)
