"""``hypercorn hello.asgi:app``: the app built from defaults and HELLO_* variables.

The only module that does work at import time; the ``hello`` command builds its own app from
its full settings (flags included) and never imports this one.
"""

from __future__ import annotations

import os

from hello.config import load
from hello.stack.build import build_app

app = build_app(load(environ=os.environ))

__all__ = ["app", "build_app"]
