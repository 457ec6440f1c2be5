"""Whole responses sent straight over ASGI, by the layers below the user's app (stack, files)."""

from __future__ import annotations

from collections.abc import Iterable

from hello.asgi_types import Send

Headers = Iterable[tuple[bytes, bytes]]


async def send_response(
    send: Send, status: int, body: bytes, headers: Headers = (), *, head: bool = False
) -> None:
    """Send ``body`` with Content-Length; for HEAD, the same headers and no body."""
    headers = list(headers)
    if status != 304:  # a 304's Content-Length would describe the 200 it stands for
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def send_text(
    send: Send, status: int, text: str, headers: Headers = (), *, head: bool = False
) -> None:
    """A short plain-text response, e.g. ``404 Not Found``."""
    await send_response(
        send,
        status,
        text.encode() + b"\n",
        [(b"content-type", b"text/plain; charset=utf-8"), *headers],
        head=head,
    )
