"""The composed ASGI app: bundled static files, then mounts, then the Quart root app."""

from __future__ import annotations

from typing import cast

from hello import legacy, web
from hello.asgi_types import ASGIApp
from hello.lifecycle import Lifecycle
from hello.mounts import PrefixDispatcher, WSGIMount
from hello.settings import Settings
from hello.static import StaticSite, load_bundled

LEGACY_PREFIX = "/legacy"


def build_app(config: Settings, lifecycle: Lifecycle | None = None) -> ASGIApp:
    """Static site in front (fastest path first), then ``/legacy``, then the Quart app."""
    root = cast(ASGIApp, web.create_app(lifecycle or Lifecycle()))
    mounted = {
        LEGACY_PREFIX: WSGIMount(legacy.create_app(), max_body_size=config.max_body_size),
    }
    return StaticSite(PrefixDispatcher(root, mounted), load_bundled())
