"""What the plain-HTTP listeners (--insecure-bind) serve: ACME challenges, and redirects.

A request that arrives without TLS gets its ACME http-01 key authorization when it asks for
``/.well-known/acme-challenge/<token>`` and a token is being proven (the files are in the
state directory, so whichever worker the CA reaches can answer), and otherwise a 308 to the
same path and query on https. Nothing else of the site is reachable without TLS.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

from hello.asgi_types import ASGIApp, Receive, Scope, Send
from hello.responses import send_response, send_text
from hello.tls.challenges import challenge_response

CHALLENGE_PREFIX = "/.well-known/acme-challenge/"
_HOST = re.compile(r"^(?P<name>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$")


class InsecureGate:
    """Requests without TLS get a challenge answer or a redirect; the rest reaches ``app``."""

    def __init__(self, app: ASGIApp, challenges: Path, https_port: int) -> None:
        self.app = app
        self.challenges = challenges
        self.port_suffix = b"" if https_port == 443 else b":%d" % https_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["scheme"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        head = scope["method"] == "HEAD"
        if path.startswith(CHALLENGE_PREFIX):
            answer = challenge_response(self.challenges, path[len(CHALLENGE_PREFIX) :])
            if answer is None:
                await send_text(send, 404, "no such challenge", head=head)
            else:
                kind = (b"content-type", b"application/octet-stream")
                await send_response(send, 200, answer, [kind], head=head)
            return
        host = _host(scope)
        if host is None:
            await send_text(send, 400, "a Host header is needed to redirect to https", head=head)
            return
        raw = scope.get("raw_path") or quote(path).encode()
        target = b"https://" + host.encode() + self.port_suffix + raw
        if scope["query_string"]:
            target += b"?" + scope["query_string"]
        await send_response(send, 308, b"", [(b"location", target)], head=head)


def _host(scope: Scope) -> str | None:
    """The host name the client asked for, without its port; None if absent or malformed."""
    for name, value in scope["headers"]:
        if name == b"host":
            match = _HOST.match(value.decode("latin-1"))
            return match["name"].lower() if match else None
    return None
