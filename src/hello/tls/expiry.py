"""When a PEM certificate expires: its notAfter, read from the DER bytes.

Python's ssl module decodes a certificate file only through a private helper
(``ssl._ssl._test_decode_cert``), and cryptography, which parses certificates properly, would
add about 4 MB to a 1.7 MB zipapp for this one field. Its place in DER is fixed by RFC 5280
(4.1): Certificate > tbsCertificate > [version], serialNumber, signature, issuer, validity >
notBefore, notAfter; this walks there and no further.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from pathlib import Path

_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.DOTALL)
UTC_TIME, GENERALIZED_TIME, VERSION = 0x17, 0x18, 0xA0


def not_after(certfile: Path) -> datetime:
    """The notAfter of the first certificate in ``certfile``; ValueError if there is none
    or it does not parse."""
    found = _PEM.search(certfile.read_bytes())
    if found is None:
        raise ValueError("no PEM certificate in the file")
    return der_not_after(base64.b64decode(found[1]))


def der_not_after(der: bytes) -> datetime:
    try:
        _, start, _ = _element(der, 0)  # Certificate
        _, start, end = _element(der, start)  # tbsCertificate
        fields: list[tuple[int, int, int]] = []
        while start < end and len(fields) < 5:
            field = _element(der, start)
            fields.append(field)
            start = field[2]
        if fields[0][0] == VERSION:
            fields.pop(0)
        _, validity, _ = fields[3]  # after serialNumber, signature and issuer
        _, _, before_end = _element(der, validity)
        tag, start, end = _element(der, before_end)
        return _time(tag, der[start:end].decode("ascii"))
    except (IndexError, UnicodeDecodeError) as error:
        raise ValueError(f"not a DER certificate: {error}") from None


def _element(der: bytes, offset: int) -> tuple[int, int, int]:
    """A DER element at ``offset``: its tag, where its content starts and where it ends."""
    tag, length = der[offset], der[offset + 1]
    offset += 2
    if length & 0x80:  # long form: the next (length & 0x7f) bytes hold the length
        size = length & 0x7F
        length = int.from_bytes(der[offset : offset + size], "big")
        offset += size
    if offset + length > len(der):
        raise IndexError("an element runs past the end")
    return tag, offset, offset + length


def _time(tag: int, text: str) -> datetime:
    if tag == UTC_TIME:  # YYMMDDHHMMSSZ; RFC 5280: YY of 50 or more is 19YY, else 20YY
        century = "19" if int(text[:2]) >= 50 else "20"
        text = century + text
    elif tag != GENERALIZED_TIME:
        raise ValueError(f"notAfter has tag {tag:#x}, not a time")
    return datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=UTC)
