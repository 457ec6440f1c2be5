"""What every request leaves behind: a request id, an access log line, metrics.

Present when the access log or the metrics are on (a user's app pays for neither otherwise). It
gives each HTTP request an id (the client's ``X-Request-ID`` when
it is a sane token, else a new one), echoes it in the response, and when the response is done
writes one access log line (``text``, or ``json``: one object a line) and hands the figures
to the metrics, if they are on. A response the protocol refused (``heads.ResponseError``) is
logged here as one ERROR line naming the app at fault.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from hello.asgi_types import ASGIApp, Message, Receive, Scope, Send
from hello.heads import ResponseError

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=@-]{1,128}$")


@dataclass
class Exchange:
    """One finished request, as the access log and the metrics see it."""

    started: float
    duration: float
    client: str
    method: str
    path: str
    query: str
    status: int
    bytes_sent: int
    protocol: str
    user_agent: str
    referer: str
    request_id: str

    def json_line(self) -> str:
        return json.dumps(
            {
                "time": datetime.fromtimestamp(self.started, UTC).isoformat(
                    timespec="milliseconds"
                ),
                "client": self.client,
                "method": self.method,
                "path": self.path + ("?" + self.query if self.query else ""),
                "status": self.status,
                "bytes": self.bytes_sent,
                "duration": round(self.duration, 6),
                "protocol": self.protocol,
                "user_agent": self.user_agent,
                "request_id": self.request_id,
            },
            separators=(",", ":"),
        )

    def text_line(self) -> str:
        """The combined log format, with the duration and request id at the end."""
        when = datetime.fromtimestamp(self.started, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
        target = self.path + ("?" + self.query if self.query else "")
        return (
            f'{self.client} - - [{when}] "{self.method} {target} {self.protocol}" {self.status} '
            f'{self.bytes_sent} "{self.referer or "-"}" "{self.user_agent or "-"}" '
            f"{self.duration:.6f} {self.request_id}"
        )


def access_logger(target: str, log_format: str) -> Callable[[Exchange], None]:
    """A function writing one line per exchange to ``target`` (``-`` for standard output)."""
    logger = logging.getLogger("hello.access")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler: logging.Handler = (
        logging.StreamHandler(sys.stdout) if target == "-" else logging.FileHandler(target)
    )
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.handlers = [handler]
    render = Exchange.json_line if log_format == "json" else Exchange.text_line

    def write(exchange: Exchange) -> None:
        logger.info(render(exchange))

    return write


class Watcher(Protocol):
    def started(self) -> None: ...

    def finished(self, exchange: Exchange) -> None: ...


class Observer:
    """ASGI middleware: request ids, then each watcher told of each request, and the log."""

    def __init__(
        self,
        app: ASGIApp,
        log: Callable[[Exchange], None] | None,
        watchers: list[Watcher],
    ) -> None:
        self.app = app
        self.log = log
        self.watchers = watchers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key: bytes(value) for key, value in scope["headers"]}
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        status = 0
        sent = 0
        started = time.time()
        clock = time.perf_counter()

        async def observed_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message = dict(message)
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            elif message["type"] == "http.response.pathsend":
                sent += os.path.getsize(message["path"])
            await send(message)

        for watcher in self.watchers:
            watcher.started()
        failed = False
        try:
            await self.app(scope, receive, observed_send)
        except ResponseError:
            # The protocol refused the app's head or body (heads.py) and wrote none of what was
            # wrong; LifespanGroup, outside, logs it.
            failed = True
            status = 500
            raise
        except BaseException:
            failed = True
            raise
        finally:
            client = scope.get("client")
            exchange = Exchange(
                started=started,
                duration=time.perf_counter() - clock,
                client=client[0] if client else "-",
                method=scope["method"],
                path=scope["path"],
                query=bytes(scope.get("query_string", b"")).decode("latin-1"),
                status=status or (500 if failed else 499),  # 499: the client went away
                bytes_sent=sent,
                protocol=f"HTTP/{scope.get('http_version', '1.1')}",
                user_agent=headers.get(b"user-agent", b"").decode("latin-1"),
                referer=headers.get(b"referer", b"").decode("latin-1"),
                request_id=request_id,
            )
            for watcher in self.watchers:
                watcher.finished(exchange)
            if self.log is not None:
                self.log(exchange)
