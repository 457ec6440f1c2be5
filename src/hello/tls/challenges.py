"""ACME http-01 challenge tokens: the rule a token must meet, and the answer stored for it.

The store (store.py) writes a token's key authorization into the state directory while the CA
checks it; the plain-HTTP listeners (stack/insecure.py) read it back, in whichever worker the
CA reaches. Both refuse a token that is not base64url, so no request can name another file.
"""

from __future__ import annotations

import re
from pathlib import Path

TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # base64url, as RFC 8555 section 8.3 says


def challenge_response(directory: Path, token: str) -> bytes | None:
    """The key authorization to answer for ``token``, if it is being proven."""
    if not TOKEN.match(token):
        return None
    try:
        return (directory / token).read_bytes()
    except OSError:
        return None
