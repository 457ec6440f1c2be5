"""What every protocol holds to: buffers and windows, idle and drain times, when a connection
is retired, which responses have no body. One place, so HTTP/1.1 and both HTTP/2 engines keep
the same figures; each says here why it is what it is.
"""

from __future__ import annotations

# --- what a client may make the server hold ---

# Request body bytes buffered for the app (HTTP/1.1) before reading the connection pauses.
BODY_HIGH_WATER = 64 * 1024
# Parsed HTTP/1.1 requests waiting on one connection (pipelining) before reading pauses.
PIPELINE_LIMIT = 16
# HTTP/2 flow-control windows for request bodies: a body's bytes go back to the client's
# window only once the app has read them, so a client never makes the server hold more.
# HTTP/2's 64 KiB default caps an upload at 640 KB/s over a 100 ms round trip.
STREAM_WINDOW = 1024 * 1024  # each request body
CONNECTION_WINDOW = 4 * 1024 * 1024  # all of a connection's request bodies together
# Bytes queued on a plain transport before a writer waits for the client to take them.
WRITE_HIGH_WATER = 64 * 1024
# Over TLS, what a client has not taken is held twice: the plaintext the app wrote, and its
# records in the TLS transport, which takes 512 KiB by default before it pauses. So the TLS
# transport pauses past TLS_HIGH_WATER, and a larger HTTP/1.1 write goes to it in pieces of
# that size, each once the last was taken (docs: slow TLS readers, 172 KiB each, was 376).
TLS_HIGH_WATER = 16 * 1024

# --- time ---

IDLE_CHECK = 0.5  # seconds between looks at a keep-alive connection's timers
# At shutdown (HTTP/1.1), and after hello's GOAWAY (HTTP/2), seconds an idle connection stays
# open for a request the client sent before it knew: answered with Connection: close on
# HTTP/1.1, left for a retry on HTTP/2. Closed at once, the client's write would fail instead
# (httpx: WriteError, "EOF occurred in violation of protocol").
DRAIN_IDLE = 1.0
SHUTDOWN_GOAWAY_WAIT = 1.0  # seconds a stopping HTTP/2 connection waits for no stream in flight

# --- retiring a connection ---

# An HTTP/2 connection is retired after keep_alive_max_requests (1,000) requests with GOAWAY,
# sent once no stream is in flight: httpx (httpcore) fails every request in flight when GOAWAY
# arrives, even those the GOAWAY says will be answered, where one that was not sent yet is
# retried on a new connection. A client that never lets the connection go idle gets GOAWAY
# at RETIRE_BY times that many requests all the same.
RETIRE_BY = 2

# --- responses ---

# Statuses whose responses carry no body, whatever the app sends (RFC 9110 6.4.1).
NO_BODY_STATUSES = frozenset({204, 304}) | frozenset(range(100, 200))
