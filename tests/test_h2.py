"""hello's HTTP/2: header blocks without a dynamic table, and responses on the wire."""

from __future__ import annotations

import h2.events
import h2.settings
from hpack import Decoder, HeaderTuple, NeverIndexedHeaderTuple

from hello.h2_headers import UnindexedEncoder
from tests.conftest import Certs
from tests.h2client import H2Client
from tests.support import HelloProcess

HEADERS = [
    HeaderTuple(b":status", b"200"),  # in the static table, name and value
    HeaderTuple(b"content-type", b"text/html; charset=utf-8"),  # the name only
    HeaderTuple(b"x-request-id", b"0123456789abcdef"),  # neither
    NeverIndexedHeaderTuple(b"authorization", b"secret"),
]


def test_header_blocks_decode_and_leave_the_decoders_table_empty() -> None:
    encoder, decoder = UnindexedEncoder(), Decoder()
    first, second = encoder.encode(HEADERS), encoder.encode(HEADERS)
    assert first[:1] == b"\x20" and second[:1] != b"\x20"  # table size 0, said once
    for block in (first, second):
        decoded = decoder.decode(block, raw=True)
        assert decoded == HEADERS
        assert [type(header) for header in decoded] == [type(header) for header in HEADERS]
    assert decoder.header_table_size == 0
    assert not decoder.header_table.dynamic_entries


def test_a_new_table_size_from_the_client_is_answered_with_size_zero_again() -> None:
    encoder = UnindexedEncoder()
    encoder.encode(HEADERS)
    encoder.header_table_size = 1024  # h2 sets this when the client's SETTINGS change it
    assert encoder.encode(HEADERS)[:1] == b"\x20"
    assert encoder.encode(HEADERS)[:1] != b"\x20"


def test_responses_over_http2_use_no_dynamic_table(tls_server: HelloProcess, certs: Certs) -> None:
    client = H2Client(tls_server, certs)
    responses: list[dict[bytes, bytes]] = []
    client.request(1, "/hello")
    for event in client.events():
        if isinstance(event, h2.events.ResponseReceived):
            responses.append(dict(event.headers))
            if len(responses) == 1:
                # The client's table size changes mid-connection; blocks still decode.
                client.conn.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: 512})
                client.request(3, "/hello")
        elif isinstance(event, h2.events.StreamEnded) and event.stream_id == 3:
            break
    client.sock.close()
    assert [r[b":status"] for r in responses] == [b"200", b"200"]
    assert all(r[b"content-type"] == b"text/html; charset=utf-8" for r in responses)
    assert responses[0][b"x-request-id"] != responses[1][b"x-request-id"]
    assert client.conn.decoder.header_table_size == 0
    assert not client.conn.decoder.header_table.dynamic_entries
