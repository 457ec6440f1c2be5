"""The composed ASGI app: the index page, then mounts by prefix, then the Quart root app.

Mounts: ``/static`` (the bundled site), ``/legacy`` (the Flask app) and every ``--static``
directory. Static files are served below Quart, on the fast path.
"""

from __future__ import annotations

from typing import cast

from hello import legacy, web
from hello.asgi_types import ASGIApp
from hello.errors import ConfigError
from hello.lifecycle import Lifecycle
from hello.mounts import PrefixDispatcher, WSGIMount
from hello.settings import Settings
from hello.static import IndexPage, StaticFiles
from hello.static_sources import BundledSite, DirectoryFiles

LEGACY_PREFIX = "/legacy"
STATIC_PREFIX = "/static"


def build_app(config: Settings, lifecycle: Lifecycle | None = None) -> ASGIApp:
    site = BundledSite.load()
    root = cast(ASGIApp, web.create_app(lifecycle or Lifecycle(), site.asset_path))
    bundled = StaticFiles(site)
    mounted: dict[str, ASGIApp] = {
        LEGACY_PREFIX: WSGIMount(legacy.create_app(), max_body_size=config.max_body_size),
        STATIC_PREFIX: bundled,
    }
    for prefix, directory in config.static:
        if prefix in mounted:
            raise ConfigError(
                f"{config.source('static')} {prefix}={directory}: {prefix} is already "
                "served by hello itself"
            )
        source = DirectoryFiles(
            directory,
            follow_symlinks=config.static_follow_symlinks,
            dotfiles=config.static_dotfiles,
        )
        mounted[prefix] = StaticFiles(source)
    return IndexPage(bundled, "index.html", PrefixDispatcher(root, mounted))
