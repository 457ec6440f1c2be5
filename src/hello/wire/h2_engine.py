"""HTTP/2's fallback engine: the h2 library behind ngh2's interface, for the one HTTP/2 driver.

http2.py drives an engine with ngh2's ``Connection`` interface, the part of it a server uses:
frames in (``receive_data``), events out (``events``: requests, DATA, resets, closes, window
updates), responses queued per stream and framed as the client's windows allow
(``send_data``, ``data_to_send``), request bodies given back to the client's window only when
the app has taken them (``acknowledge_received_data``). libnghttp2 does all of that itself.
Where ngh2 cannot be imported (or ``--http2-engine h2`` asks), ``Connection`` here does it on
h2's sans-I/O state machine, so the fallback is an engine, not a second protocol: the same
driver, the same exchange, the same rules.

What libnghttp2 does and h2 does not is done here: the response bodies wait in per-stream
queues and are framed in turns, one frame of each stream at a time, as far as the windows and
the amount asked for go; a stream's close (both sides ended, or a reset) is an event; a
graceful GOAWAY ignores the streams the client opens after it (the GOAWAY said they were not
taken, so the client sends them again elsewhere); a client that resets streams faster than
``stream_reset_rate_limit`` allows is sent GOAWAY ENHANCE_YOUR_CALM (CVE-2023-44487, "rapid
reset"). Response headers go without HPACK's dynamic table (h2_headers.py).
"""

from __future__ import annotations

import base64
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from hyperframe.frame import GoAwayFrame

from hello.wire.h2_headers import UnindexedEncoder

Header = tuple[bytes, bytes]
ErrorCode = h2.errors.ErrorCodes


class NGH2Error(Exception):
    """What the engine refuses: a frame that breaks the protocol, or an operation on a
    stream that is gone (ngh2's name, so the driver catches one kind for either engine)."""


class ConnectionStateError(NGH2Error):
    """The connection has ended: nothing more is read or sent."""


@dataclass(frozen=True, slots=True)
class Configuration:
    """ngh2's configuration, as far as the driver sets it."""

    auto_window_update: bool = True
    max_inbound_header_list_size: int = 65536
    stream_reset_rate_limit: tuple[int, int] = (1000, 33)


# --- events, as ngh2 names them ---


@dataclass(frozen=True, slots=True)
class RequestReceived:
    stream_id: int
    headers: tuple[Header, ...]
    end_stream: bool


@dataclass(frozen=True, slots=True)
class DataReceived:
    stream_id: int
    data: bytes
    end_stream: bool


@dataclass(frozen=True, slots=True)
class TrailersReceived:
    stream_id: int
    headers: tuple[Header, ...]


@dataclass(frozen=True, slots=True)
class StreamReset:
    stream_id: int
    error_code: int


@dataclass(frozen=True, slots=True)
class StreamClosed:
    stream_id: int
    error_code: int


@dataclass(frozen=True, slots=True)
class WindowUpdated:
    stream_id: int
    increment: int


@dataclass(frozen=True, slots=True)
class SettingsReceived:
    settings: Mapping[int, int]


@dataclass(frozen=True, slots=True)
class GoAwayReceived:
    last_stream_id: int
    error_code: int
    debug_data: bytes


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    error_code: int
    debug_data: bytes


class _Outbound:
    """A stream's response body and trailers, waiting for the client's window."""

    __slots__ = ("chunks", "size", "end", "trailers", "remote_ended", "local_ended")

    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        self.size = 0
        self.end = False  # END_STREAM goes after the chunks
        self.trailers: list[Header] | None = None  # ...or these, with END_STREAM
        self.remote_ended = False
        self.local_ended = False


class Connection:
    """A server's HTTP/2 connection on h2, with ngh2's interface."""

    def __init__(self, config: Configuration | None = None) -> None:
        self.config = config = config or Configuration()
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(
                client_side=False,
                header_encoding=None,
                validate_outbound_headers=False,  # the exchange checks them (heads.py)
                normalize_outbound_headers=False,
            )
        )
        self.h2.encoder = UnindexedEncoder()  # type: ignore[assignment]
        self.h2.decoder.max_header_list_size = config.max_inbound_header_list_size
        self.auto_window_update = config.auto_window_update
        self.burst, self.rate = config.stream_reset_rate_limit
        self.tokens = float(self.burst)
        self.refilled = time.monotonic()
        self.streams: dict[int, _Outbound] = {}
        self.ready: deque[int] = deque()  # streams with something to frame, in turn
        self.pending: list[Any] = []
        self.extra = bytearray()  # frames written beside h2's state machine (GOAWAY)
        self.last_stream: int | None = None  # after a graceful GOAWAY: the last one taken
        self.terminated = False

    def release(self) -> None:
        """The connection has ended: break the cycle h2's connection makes with its own
        bound methods (its frame dispatch table), so its memory comes back as it ends, not
        at the next full collection (wire/tcp.py says why that matters)."""
        vars(self.h2).pop("_frame_dispatch_table", None)

    # --- setting up ---

    def initiate_connection(self, settings: Mapping[int, int] | None = None) -> None:
        self._settings(settings or {})
        self.h2.initiate_connection()

    def initiate_upgrade(
        self,
        settings_payload: bytes,
        *,
        local_settings: Mapping[int, int] | None = None,
        head_request: bool = False,
    ) -> None:
        self._settings(local_settings or {})
        self.h2.initiate_upgrade_connection(base64.urlsafe_b64encode(settings_payload))
        stream = self.streams[1] = _Outbound()
        stream.remote_ended = True  # the HTTP/1.1 request, whole

    def _settings(self, settings: Mapping[int, int]) -> None:
        codes = h2.settings.SettingCodes
        values = {codes(code): value for code, value in self.h2.local_settings.items()}
        values.update({codes(int(code)): value for code, value in settings.items()})
        self.h2.local_settings = h2.settings.Settings(client=False, initial_values=values)

    def set_local_window_size(self, size: int) -> None:
        self.h2.increment_flow_control_window(size - self.h2.inbound_flow_control_window)

    # --- frames in, events out ---

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        if self.terminated:
            raise ConnectionStateError("the connection has ended")
        try:
            events = self.h2.receive_data(bytes(data))
        except h2.exceptions.ProtocolError as error:
            # The engine ends the connection, as libnghttp2 does: GOAWAY with the code,
            # then the ConnectionClosed event that says why.
            code = getattr(error, "error_code", ErrorCode.PROTOCOL_ERROR)
            self.terminate_connection(code, str(error).encode())
            return
        for event in events:
            if self.terminated:
                break  # ended within this read (a reset flood): the rest changes nothing
            self._event(event)

    def _event(self, event: h2.events.Event) -> None:
        pending = self.pending
        if isinstance(event, h2.events.DataReceived):
            stream_id = event.stream_id
            padding = event.flow_controlled_length - len(event.data)
            if padding:  # the driver gives back what it hands the app; this, now
                self.h2.acknowledge_received_data(padding, stream_id)
            if self.auto_window_update and event.data:
                self.h2.acknowledge_received_data(len(event.data), stream_id)
            ended = event.stream_ended is not None
            pending.append(DataReceived(stream_id, event.data, ended))
            if ended:
                self._remote_ended(stream_id)
        elif isinstance(event, h2.events.RequestReceived):
            self._request(event)
        elif isinstance(event, h2.events.TrailersReceived):
            pending.append(TrailersReceived(event.stream_id, tuple(event.headers)))
            self._remote_ended(event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams.get(event.stream_id)
            if stream is not None and not stream.remote_ended:
                pending.append(DataReceived(event.stream_id, b"", True))
                self._remote_ended(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            # The client's reset, or h2's own of a stream the client broke: gone either way.
            if event.stream_id in self.streams:
                pending.append(StreamReset(event.stream_id, event.error_code))
                self._closed(event.stream_id, event.error_code)
            if event.remote_reset:
                self._reset_flood()
        elif isinstance(event, h2.events.WindowUpdated):
            pending.append(WindowUpdated(event.stream_id, event.delta))
            if event.stream_id == 0:
                self.ready.extend(i for i, s in self.streams.items() if s.chunks or s.end)
            elif event.stream_id in self.streams:
                self.ready.append(event.stream_id)
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            changed = {
                int(code): setting.new_value for code, setting in event.changed_settings.items()
            }
            pending.append(SettingsReceived(changed))
            self.ready.extend(i for i, s in self.streams.items() if s.chunks or s.end)
        elif isinstance(event, h2.events.ConnectionTerminated):
            pending.append(
                GoAwayReceived(
                    event.last_stream_id or 0,
                    int(event.error_code or 0),
                    event.additional_data or b"",
                )
            )

    def _request(self, event: h2.events.RequestReceived) -> None:
        stream_id = event.stream_id
        if self.last_stream is not None and stream_id > self.last_stream:
            # Opened after hello's GOAWAY, which told the client it was not taken: ignored, as
            # libnghttp2 does, and sent again elsewhere. (A RST_STREAM now would break an h2
            # client, which after a GOAWAY takes no frame but GOAWAY.)
            return
        self.streams[stream_id] = _Outbound()
        ended = event.stream_ended is not None
        self.pending.append(RequestReceived(stream_id, tuple(event.headers), ended))
        if ended:
            self._remote_ended(stream_id)

    def _remote_ended(self, stream_id: int) -> None:
        stream = self.streams.get(stream_id)
        if stream is not None:
            stream.remote_ended = True
            if stream.local_ended:
                self._closed(stream_id, 0)

    def _closed(self, stream_id: int, code: int) -> None:
        if self.streams.pop(stream_id, None) is not None:
            self.pending.append(StreamClosed(stream_id, code))

    def _reset_flood(self) -> None:
        """A token bucket over the client's resets: ``burst`` at once, ``rate`` a second."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.refilled) * self.rate)
        self.refilled = now
        self.tokens -= 1
        if self.tokens < 0:
            self.terminate_connection(ErrorCode.ENHANCE_YOUR_CALM)

    def events(self) -> list[Any]:
        events, self.pending = self.pending, []
        return events

    # --- responses ---

    def _stream(self, stream_id: int) -> _Outbound:
        stream = self.streams.get(stream_id)
        if stream is None or self.terminated:
            raise NGH2Error(f"stream {stream_id} is closed")
        return stream

    def send_response(
        self, stream_id: int, headers: Iterable[Header], *, end_stream: bool = False
    ) -> None:
        stream = self._stream(stream_id)
        try:
            self.h2.send_headers(stream_id, list(headers), end_stream=end_stream)
        except h2.exceptions.ProtocolError as error:
            raise NGH2Error(str(error)) from None
        if end_stream:
            self._local_ended(stream_id, stream)

    def send_informational_response(self, stream_id: int, headers: Iterable[Header]) -> None:
        self._stream(stream_id)
        try:
            self.h2.send_headers(stream_id, list(headers))
        except h2.exceptions.ProtocolError as error:
            raise NGH2Error(str(error)) from None

    def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        stream = self._stream(stream_id)
        if data:
            stream.chunks.append(data)
            stream.size += len(data)
        stream.end = stream.end or end_stream
        self.ready.append(stream_id)

    def end_stream(self, stream_id: int) -> None:
        self.send_data(stream_id, b"", end_stream=True)

    def send_trailers(self, stream_id: int, headers: Iterable[Header]) -> None:
        stream = self._stream(stream_id)
        stream.trailers = list(headers)
        stream.end = True
        self.ready.append(stream_id)

    def queued_body_size(self, stream_id: int | None = None) -> int:
        if stream_id is None:
            return sum(stream.size for stream in self.streams.values())
        stream = self.streams.get(stream_id)
        return stream.size if stream is not None else 0

    def reset_stream(self, stream_id: int, error_code: int = ErrorCode.CANCEL) -> None:
        if stream_id not in self.streams or self.terminated:
            raise NGH2Error(f"stream {stream_id} is closed")
        try:
            self.h2.reset_stream(stream_id, error_code)
        except h2.exceptions.ProtocolError as error:
            raise NGH2Error(str(error)) from None
        finally:
            self._closed(stream_id, error_code)

    def _local_ended(self, stream_id: int, stream: _Outbound) -> None:
        stream.local_ended = True
        if stream.remote_ended:
            self._closed(stream_id, 0)

    # --- flow control ---

    def acknowledge_received_data(self, amount: int, stream_id: int) -> None:
        if amount and not self.terminated:
            self.h2.acknowledge_received_data(
                amount, stream_id
            )  # a closed stream: the connection's

    @property
    def remote_window_size(self) -> int:
        return self.h2.outbound_flow_control_window

    def stream_remote_window_size(self, stream_id: int) -> int:
        self._stream(stream_id)
        try:
            return self.h2.local_flow_control_window(stream_id)
        except h2.exceptions.StreamClosedError:
            raise NGH2Error(f"stream {stream_id} is closed") from None

    # --- the connection's end ---

    def send_goaway(self, error_code: int = 0) -> None:
        """GOAWAY naming the last stream taken; those go on, new ones are refused. Written
        beside h2's state machine, which after its own GOAWAY refuses every frame."""
        if self.terminated or self.last_stream is not None:
            return
        self.last_stream = self.h2.highest_inbound_stream_id
        frame = GoAwayFrame(0)
        frame.last_stream_id = self.last_stream
        frame.error_code = error_code
        self.extra += frame.serialize()

    def terminate_connection(self, error_code: int = 0, why: bytes = b"") -> None:
        if self.terminated:
            raise ConnectionStateError("the connection has ended")
        self.terminated = True
        self.h2.close_connection(error_code)
        self.pending.append(ConnectionClosed(int(error_code), why))

    def data_to_send(self, amount: int | None = None) -> bytes:
        """The frames due, the queued bodies framed first as far as the windows allow (and,
        with ``amount``, about that many bytes)."""
        if not self.terminated:
            self._frame(amount)
        data = self.h2.data_to_send(amount) if amount is not None else self.h2.data_to_send()
        if self.extra:
            data, self.extra = bytes(self.extra) + data, bytearray()
        return data

    def _frame(self, amount: int | None) -> None:
        """One frame of each ready stream in turn, until nothing more can go."""
        ready, streams = self.ready, self.streams
        budget = amount if amount is not None else 1 << 62
        while ready and budget > 0:
            stream_id = ready.popleft()
            stream = streams.get(stream_id)
            if stream is None or stream.local_ended:
                continue
            try:
                budget -= self._frame_one(stream_id, stream)
            except h2.exceptions.ProtocolError:
                # h2 will send nothing more on it (the client's GOAWAY closed h2's state
                # machine, or the stream is gone): its sender is told, as for a reset.
                self._closed(stream_id, ErrorCode.CANCEL)

    def _frame_one(self, stream_id: int, stream: _Outbound) -> int:
        """The next frame of ``stream``, if the windows allow; its size."""
        conn = self.h2
        if stream.chunks:
            room = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
            if room <= 0:
                return 0  # a WINDOW_UPDATE puts it back
            chunk = stream.chunks.popleft()
            if len(chunk) > room:
                stream.chunks.appendleft(chunk[room:])
                chunk = chunk[:room]
            last = not stream.chunks and stream.end and stream.trailers is None
            conn.send_data(stream_id, chunk, end_stream=last)
            stream.size -= len(chunk)
            if last:
                self._local_ended(stream_id, stream)
            elif stream.chunks or stream.end:
                self.ready.append(stream_id)
            return len(chunk) + 9
        if stream.end:
            if stream.trailers is not None:
                conn.send_headers(stream_id, stream.trailers, end_stream=True)
            else:
                conn.end_stream(stream_id)
            self._local_ended(stream_id, stream)
        return 9
