"""A raw HTTP/2 client over TLS (h2 on a socket), for frames no polite client sends and for
looking at what the server's frames hold."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable, Iterator

import h2.config
import h2.connection
import h2.events
import h2.settings
from wsproto.connection import Connection as WebSocket
from wsproto.connection import ConnectionType
from wsproto.events import TextMessage

from tests.conftest import Certs
from tests.support import HelloProcess


def host_port(server: HelloProcess) -> tuple[str, int]:
    host, port = server.url.split("://")[1].rsplit(":", 1)
    return host, int(port)


def tls_socket(
    server: HelloProcess, certs: Certs, alpn: str, receive_buffer: int = 0
) -> ssl.SSLSocket:
    """A TLS connection to ``server``; with ``receive_buffer``, the kernel buffers that many
    bytes of what arrives (so a server writing faster than this client reads must wait)."""
    context = certs.client_context()
    context.set_alpn_protocols([alpn])
    raw = socket.socket()
    if receive_buffer:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    raw.connect(host_port(server))
    tls = context.wrap_socket(raw, server_hostname="localhost")
    tls.settimeout(10)
    return tls


class H2Client:
    """A raw HTTP/2 client over TLS, for frames no polite client sends."""

    def __init__(self, server: HelloProcess, certs: Certs, receive_buffer: int = 0) -> None:
        self.sock = tls_socket(server, certs, "h2", receive_buffer)
        assert self.sock.selected_alpn_protocol() == "h2"
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.flush()

    def flush(self) -> None:
        self.sock.sendall(self.conn.data_to_send())

    def take_frames_after_goaway(self) -> None:
        """Take the frames of the streams a GOAWAY still covers, as RFC 9113 asks: python-h2
        moves the connection to CLOSED at a GOAWAY and refuses them (httpcore issue #46).
        No stream can be opened in CLOSED all the same."""
        closed = h2.connection.ConnectionState.CLOSED
        given = h2.connection.ConnectionInputs
        owed = ["RECV_HEADERS", "RECV_DATA", "RECV_RST_STREAM", "RECV_WINDOW_UPDATE", "RECV_PING"]
        owed += ["RECV_SETTINGS", "SEND_WINDOW_UPDATE", "SEND_PING", "SEND_SETTINGS"]
        machine = self.conn.state_machine
        machine._transitions = {
            **machine._transitions,
            **{(closed, given[name]): (None, closed) for name in owed},
        }

    def events(self) -> Iterator[h2.events.Event]:
        """Events as they arrive, until the server closes the connection."""
        while data := self.sock.recv(65536):
            yield from self.conn.receive_data(data)
            self.flush()

    def read_all(self, stream_ids: Iterable[int]) -> tuple[dict[int, bytes], dict[int, bytes]]:
        """Read until every stream of ``stream_ids`` has ended, acknowledging what arrives
        (so the windows stay open): their statuses and bodies."""
        waiting = set(stream_ids)
        statuses: dict[int, bytes] = {}
        bodies = {stream_id: bytearray() for stream_id in waiting}
        for event in self.events():
            if isinstance(event, h2.events.ResponseReceived):
                statuses[event.stream_id] = dict(event.headers)[b":status"]
            elif isinstance(event, h2.events.DataReceived):
                bodies[event.stream_id] += event.data
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                waiting.discard(event.stream_id)
                if not waiting:
                    break
        return statuses, {stream_id: bytes(body) for stream_id, body in bodies.items()}

    def request(
        self, stream_id: int, path: str, *extra: tuple[str, str], flush: bool = True
    ) -> None:
        headers = [(":method", "GET"), (":path", path), (":scheme", "https")]
        headers += [(":authority", "localhost"), *extra]
        self.conn.send_headers(stream_id, headers, end_stream=True)
        if flush:
            self.flush()


def websocket_over_http2(
    server: HelloProcess, certs: Certs, path: str, texts: list[str]
) -> list[str]:
    """A WebSocket over HTTP/2 (RFC 8441: an extended CONNECT stream) to ``path``: each of
    ``texts`` sent in turn, and the server's text reply to each."""
    client = H2Client(server, certs)
    settings = h2.settings.SettingCodes
    for event in client.events():  # the server must allow extended CONNECT first
        if isinstance(event, h2.events.RemoteSettingsChanged):
            assert event.changed_settings[settings.ENABLE_CONNECT_PROTOCOL].new_value == 1
            break
    headers = [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https")]
    headers += [(":path", path), (":authority", "localhost"), ("sec-websocket-version", "13")]
    client.conn.send_headers(1, headers)
    client.flush()
    socket_ = WebSocket(ConnectionType.CLIENT)
    replies: list[str] = []
    waiting = list(texts)
    for event in client.events():
        if isinstance(event, h2.events.ResponseReceived):
            assert dict(event.headers)[b":status"] == b"200", event.headers
        elif isinstance(event, h2.events.DataReceived):
            client.conn.acknowledge_received_data(event.flow_controlled_length, 1)
            socket_.receive_data(event.data)
            replies += [str(m.data) for m in socket_.events() if isinstance(m, TextMessage)]
        elif isinstance(event, h2.events.StreamReset | h2.events.StreamEnded):
            break
        else:
            continue
        if len(replies) == len(texts) - len(waiting):  # answered: the next message
            if not waiting:
                break
            client.conn.send_data(1, socket_.send(TextMessage(data=waiting.pop(0))))
            client.flush()
    client.sock.close()
    return replies
