"""The wire: every protocol hello speaks.

- ``choice``: which protocol serves a connection, and the engines behind each.
- ``driver``: what a connection asks of hello's protocols, and what they serve (the stack's
  apps); ``config``: Hypercorn's Config filled from the settings, the protocols' own.
- ``tcp``: a TCP connection: its protocol, reads and writes, slow request bodies, the idle
  timer.
- ``policy``: the buffers, windows, idle and drain times and no-body rules every protocol
  keeps.
- ``exchange``: one request on any protocol: its scope, ``receive`` and ``send``, the checks
  of its head and Content-Length, path send and trailers, the 500 of an app that failed.
  ``h1_cycle`` and ``http2_stream`` frame it for their protocol.
- ``h1``, ``h1_cycle``, ``reading``: HTTP/1.1, read in ``data_received``; ``h1_parsers``: its
  engines, httptools (llhttp), or h11 where httptools cannot be imported; ``h1_rules``: what
  RFC 9112 asks of a request beyond what the parsers check.
- ``h11``: Hypercorn's h11 protocol, where h1 hands a connection over (Upgrade, h2c).
- ``http2``, ``http2_stream``, ``http2_gate``, ``ws``: HTTP/2, WebSocket over it.
- ``http2_engines``, ``h2_engine``, ``h2_headers``: HTTP/2's engines, ngh2, or h2 behind
  ngh2's interface where ngh2 is not used, its response headers without HPACK's table.
- ``quic``: HTTP/3's UDP server, stopped promptly at shutdown.

hello's worker loop (server/serve.py) builds its connections and protocols itself, and
changes nothing in another package.
"""
