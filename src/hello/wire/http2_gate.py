"""The frame rules libnghttp2 relaxes, enforced before its parser sees the frames.

libnghttp2 is lenient where RFC 9113 is strict, on purpose (it serves the whole web), and so
fails 8 of h2spec's 147 strict checks: it ignores DATA and HEADERS on a stream the client has
closed or reset (STREAM_CLOSED is required), a HEADERS frame that reuses a lower stream
identifier (PROTOCOL_ERROR), PRIORITY frames with stream 0 or that depend on their own
stream (it no longer reads RFC 7540 priorities at all), and it ends the whole connection
where a WINDOW_UPDATE overflows one stream's window (RST_STREAM FLOW_CONTROL_ERROR).

``FrameGate`` reads each frame's 9-byte header as the bytes pass (and the payload of
PRIORITY and WINDOW_UPDATE frames, 4 or 5 bytes) and hands the engine the bytes in runs:
whole runs for the common frames (a new request's HEADERS, DATA on an open stream), cut
before a frame whose verdict depends on what the engine made of the frames before it, and
after each RST_STREAM. A
violation ends the connection with the code the RFC names; treating a stream error as a
connection error is allowed (RFC 9113 5.4.1) and the clients that trip these are broken.
h2spec -S (run by hand: it is not packaged for the CI machine) checks every case;
tests/test_wire.py checks two of them.
"""

from __future__ import annotations

import struct
from typing import Any, Protocol

from hello.wire.http2_engines import ErrorCode

PREFACE = 24  # the client's connection preface: bytes before the first frame
HEAD = 9  # a frame header
FRAME = struct.Struct(">HBBBI")  # its length (16 + 8 bits), type, flags and stream
DATA, HEADERS, PRIORITY, RST_STREAM, WINDOW_UPDATE, CONTINUATION = 0x0, 0x1, 0x2, 0x3, 0x8, 0x9
END_HEADERS = 0x4
MAX_WINDOW = 2**31 - 1
# libnghttp2 ends the connection (COMPRESSION_ERROR) for a header field over 64 KiB, and
# ngh2 for a block of more than 8 CONTINUATION frames. So a header block sent over several
# frames is held until it is whole; one past 64 KiB as sent (over 17 KiB decoded even at
# HPACK's best, so over --max-header-size's default of 16 KiB) is answered 431 instead, and
# the connection closed: its HPACK state cannot be kept without decoding it.
BLOCK_LIMIT = 64 * 1024


class Engine(Protocol):
    """What the gate needs of its connection (http2.H2Protocol)."""

    conn: Any  # the engine's connection (http2_engines.py)
    errors: type[Exception]  # what its calls raise

    def engine_feed(self, data: bytes | memoryview) -> bool: ...  # False: connection ended

    def is_open(self, stream_id: int) -> bool: ...

    def fail(self, code: int, why: str = "") -> None: ...

    def too_large(self, stream_id: int) -> None: ...  # 431 on the stream, then the close


class FrameGate:
    """One connection's frame boundaries, and the streams the client has closed."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.pass_through = PREFACE  # bytes to hand over before the next frame header
        self.held = b""  # an incomplete frame header (or small payload) kept for the next read
        self.highest = 0  # the highest stream the client has opened
        self.closed: dict[int, bool] = {}  # stream: closed by the client (strict) or not
        self.block: bytearray | None = None  # a header block's frames, held until whole

    def stream_closed(self, stream_id: int, by_client: bool) -> None:
        self.closed[stream_id] = by_client

    def feed(self, chunk: bytes) -> None:
        if self.block is not None:
            self._hold(chunk)
            return
        data = self.held + chunk if self.held else chunk
        self.held = b""
        size = len(data)
        position = min(self.pass_through, size)
        self.pass_through -= position
        start = 0  # the first byte not yet handed to the engine
        stop = size  # the end of what this read hands over
        engine = self.engine
        while position < size:
            if size - position < HEAD:
                stop = position  # an incomplete header: kept for the next read
                break
            high, low, kind, flags, stream_id = FRAME.unpack_from(data, position)
            length = high << 8 | low
            stream_id &= MAX_WINDOW
            end = position + HEAD + length
            if kind == HEADERS and not flags & END_HEADERS:
                # CONTINUATION frames follow: the block goes to the engine once it is whole.
                if engine.engine_feed(memoryview(data)[start:position]):
                    self.pass_through = 0
                    self.block = bytearray()
                    self._hold(data[position:])
                return
            if kind == HEADERS and stream_id > self.highest and stream_id & 1:
                self.highest = stream_id  # a new request: the common case
            elif kind in (DATA, HEADERS) and not engine.is_open(stream_id):
                # Its verdict depends on what the frames before it did: they go first.
                if not engine.engine_feed(memoryview(data)[start:position]):
                    return
                start = position
                if not self._stream_frame(kind, stream_id):
                    return
            elif kind in (PRIORITY, RST_STREAM, WINDOW_UPDATE) and stream_id and length in (4, 5):
                if end > size:
                    stop = position  # its payload is read whole, next time
                    break
                if not engine.engine_feed(memoryview(data)[start:position]):
                    return
                start = position
                payload = int.from_bytes(data[position + HEAD : position + HEAD + 4], "big")
                if kind == PRIORITY and length == 5 and payload & MAX_WINDOW == stream_id:
                    engine.fail(ErrorCode.PROTOCOL_ERROR, f"stream {stream_id} depends on itself")
                    return
                if kind == WINDOW_UPDATE and length == 4 and self._overflows(stream_id, payload):
                    start = end  # the frame is dropped; the stream is reset instead
                elif kind == RST_STREAM:  # what follows for that stream is judged after it
                    if not engine.engine_feed(memoryview(data)[position:end]):
                        return
                    start = end
            elif kind == PRIORITY and not stream_id:
                engine.fail(ErrorCode.PROTOCOL_ERROR, "PRIORITY on stream 0")
                return
            position = end
        if position > size:  # the rest of this frame's payload comes in later reads
            self.pass_through = position - size
        self.held = data[stop:]
        if start < stop:
            engine.engine_feed(memoryview(data)[start:stop] if start or stop < size else data)

    def _hold(self, chunk: bytes) -> None:
        """Add ``chunk`` to the header block held; once it is whole, hand it over (or refuse
        it) and go on with what follows."""
        assert self.block is not None
        block = self.block
        block += chunk
        position = 0
        first = True
        while len(block) - position >= HEAD:
            length = int.from_bytes(block[position : position + 3], "big")
            kind, flags = block[position + 3], block[position + 4]
            end = position + HEAD + length
            if not first and kind != CONTINUATION:  # a protocol error: the engine says so
                end = position
                break
            if end > BLOCK_LIMIT + HEAD:
                stream_id = int.from_bytes(block[5:HEAD], "big") & MAX_WINDOW
                self.block = None
                self.engine.too_large(stream_id)
                return
            if end > len(block):
                return  # the frame is not all here yet
            first = False
            position = end
            if flags & END_HEADERS:
                break
        else:
            return
        stream_id = int.from_bytes(block[5:HEAD], "big") & MAX_WINDOW
        if stream_id > self.highest and stream_id & 1:
            self.highest = stream_id
        self.block = None
        if self.engine.engine_feed(bytes(block[:end])) and end < len(block):
            self.feed(bytes(block[end:]))

    def _stream_frame(self, kind: int, stream_id: int) -> bool:
        """Whether a DATA or HEADERS frame for a stream not open may go to the engine."""
        engine = self.engine
        if engine.is_open(stream_id):
            return True
        closed_by_client = self.closed.get(stream_id)
        what = "DATA" if kind == DATA else "HEADERS"
        if closed_by_client:
            engine.fail(ErrorCode.STREAM_CLOSED, f"{what} on stream {stream_id}, closed")
            return False
        if kind == HEADERS and closed_by_client is None and stream_id & 1:
            if stream_id > self.highest:
                self.highest = stream_id
                return True
            why = f"HEADERS opening stream {stream_id}, below stream {self.highest}"
            engine.fail(ErrorCode.PROTOCOL_ERROR, why)
            return False
        return True  # a stream this side reset, or one the engine judges itself

    def _overflows(self, stream_id: int, increment: int) -> bool:
        """Whether a stream's WINDOW_UPDATE takes its window past 2^31-1: then the stream
        is reset with FLOW_CONTROL_ERROR (RFC 9113 6.9.1), not the connection ended."""
        engine = self.engine
        if not engine.is_open(stream_id):
            return False
        try:
            window = engine.conn.stream_remote_window_size(stream_id)
        except self.engine.errors:
            return False
        if window + (increment & MAX_WINDOW) <= MAX_WINDOW:
            return False
        engine.conn.reset_stream(stream_id, ErrorCode.FLOW_CONTROL_ERROR)
        return True
