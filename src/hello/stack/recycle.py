"""--max-requests: each serving process counts its requests and, past its budget, asks its
supervisor for a successor (ops/lifecycle.py), as gunicorn's and Hypercorn's max_requests do.

The budget is drawn in each process at its first request, after the fork, so workers started
together do not all ask at once (--max-requests-jitter). The request that reaches it is
served as any other; the process then drains like a generation at a reload.
"""

from __future__ import annotations

import random

from hello.asgi_types import ASGIApp, Receive, Scope, Send
from hello.ops.lifecycle import Lifecycle


class RequestBudget:
    """ASGI middleware: count HTTP requests and WebSockets; recycle past the budget."""

    def __init__(self, app: ASGIApp, lifecycle: Lifecycle, limit: int, jitter: int) -> None:
        self.app = app
        self.lifecycle = lifecycle
        self.limit = limit
        self.jitter = jitter
        self.budget = 0  # drawn at the first request, in the serving process
        self.served = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            if not self.budget:
                self.budget = self.limit + random.randint(0, self.jitter)
            self.served += 1
            if self.served == self.budget:
                reason = f"served {self.served} requests (--max-requests {self.limit}"
                reason += f" + {self.budget - self.limit} jitter)" if self.jitter else ")"
                self.lifecycle.recycle(reason)
        await self.app(scope, receive, send)
