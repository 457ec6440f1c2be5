"""Settings: the option schema, its parsers, loading in layers and the cross-checks.

Flags, ``HELLO_*`` variables and TOML keys all come from one schema (``schema.Settings``); a
loaded ``Settings`` is frozen and each value knows where it came from.
"""

from hello.config.load import load
from hello.config.parsers import (
    DEFAULT_BIND,
    LETS_ENCRYPT,
    LETS_ENCRYPT_STAGING,
    AppSpec,
    MountSpec,
    parse_bool,
)
from hello.config.schema import CONFIG_ENV, ENV_PREFIX, Option, Settings, options

__all__ = [
    "AppSpec",
    "CONFIG_ENV",
    "DEFAULT_BIND",
    "ENV_PREFIX",
    "LETS_ENCRYPT",
    "LETS_ENCRYPT_STAGING",
    "MountSpec",
    "Option",
    "Settings",
    "load",
    "options",
    "parse_bool",
]
