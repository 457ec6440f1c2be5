"""An ASGI app that takes its time: ``/?SECONDS`` says "slow: started" on standard output,
waits SECONDS, then answers "done"."""

import asyncio
import sys
from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    print("slow: started", flush=True)
    sys.stdout.flush()
    await asyncio.sleep(float(scope["query_string"] or b"1"))
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"done"})
