"""Apps that misbehave the way buggy apps do: bad response heads and wrong Content-Lengths.

``asgi_app`` and ``wsgi_app`` answer the same paths with the same faults:
- ``/injected``: a header value with CR LF and a second header after it;
- ``/nul``: a NUL in a header value;
- ``/bad-name``: a header name with a space;
- ``/long``: ``Content-Length: 10`` and 20 bytes;
- ``/short``: ``Content-Length: 10`` and 5 bytes;
- ``/length-nan``: ``Content-Length: ten``;
- ``/ok``: a well-formed answer, to show the connection still works.
"""

from collections.abc import Callable, Iterable
from typing import Any

INJECTED = "a\r\nSet-Cookie: pwned=1"
FAULTS: dict[str, tuple[list[tuple[str, str]], list[bytes]]] = {
    "/injected": ([("x-note", INJECTED)], [b"injected"]),
    "/nul": ([("x-note", "a\x00b")], [b"nul"]),
    "/bad-name": ([("x bad", "1")], [b"bad name"]),
    "/long": ([("content-length", "10")], [b"0123456789", b"ABCDEFGHIJ"]),
    "/short": ([("content-length", "10")], [b"01234"]),
    "/length-nan": ([("content-length", "ten")], [b"nan"]),
    "/ok": ([("content-type", "text/plain")], [b"ok"]),
}


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"][len(scope["root_path"]) :]
    headers, parts = FAULTS.get(path, ([], [b"unknown"]))
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers],
        }
    )
    for index, part in enumerate(parts):
        await send(
            {"type": "http.response.body", "body": part, "more_body": index < len(parts) - 1}
        )


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    headers, parts = FAULTS.get(environ["PATH_INFO"], ([], [b"unknown"]))
    start_response("200 OK", headers)
    return parts
