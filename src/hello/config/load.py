"""Settings loaded in layers -- defaults < TOML file < environment < flags -- each value
remembering where it came from, so an error can name the flag, variable or file key at fault."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hello.config.checks import check
from hello.config.schema import CONFIG_ENV, ENV_PREFIX, Option, Settings, options
from hello.errors import ConfigError


def load(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    defaults: Mapping[str, tuple[Any, str]] | None = None,
) -> Settings:
    """Build Settings from defaults < ``config_file`` < HELLO_* in ``environ`` < ``flags``.

    ``flags`` maps option names to what the command line gave: a string, or a list of strings
    for repeatable options. ``config_file`` falls back to ``$HELLO_CONFIG``. ``defaults``
    replaces built-in defaults: name to (raw value, where it came from).
    """
    environ = environ or {}
    flags = flags or {}
    schema = {option.name: option for option in options()}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}

    for name, (raw, where) in (defaults or {}).items():
        values[name] = _parse(schema[name], raw, where)
        sources[name] = where

    if config_file is None and environ.get(CONFIG_ENV):
        config_file = Path(environ[CONFIG_ENV])
    if config_file is not None:
        for name, (raw, where) in _read_toml(config_file, schema).items():
            values[name] = _parse(schema[name], raw, where)
            sources[name] = where
    for name, (raw, where) in _read_environ(environ, schema).items():
        values[name] = _parse(schema[name], raw, where)
        sources[name] = where
    for name, raw in flags.items():
        option = schema[name]
        values[name] = _parse(option, raw, option.flag)
        sources[name] = option.flag

    settings = Settings(**values, sources=sources)
    check(settings)
    return settings


def _parse(option: Option, raw: Any, where: str) -> Any:
    items = raw if isinstance(raw, list) else [raw]
    if not option.repeatable and len(items) != 1:
        raise ConfigError(f"{where}: expected one value, got {len(items)}")
    parsed = []
    for item in items:
        text = _as_text(item, where)
        try:
            parsed.append(option.parse(text))
        except ValueError as error:
            raise ConfigError(f"{where} {text!r}: {error}") from None
    if option.repeatable:
        if not parsed and option.default:
            raise ConfigError(f"{where}: expected at least one value")
        return tuple(parsed)
    return parsed[0]


def _as_text(item: Any, where: str) -> str:
    if isinstance(item, dict):
        return _mount_table(item, where)
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int | float | str):
        return str(item)
    raise ConfigError(f"{where}: expected a string or a number, got {type(item).__name__}")


def _mount_table(table: dict[str, Any], where: str) -> str:
    """A TOML ``[[mount]]`` table (prefix, app, and optionally kind) as a --mount value."""
    unknown = set(table) - {"prefix", "app", "kind"}
    if unknown or not {"prefix", "app"} <= set(table):
        raise ConfigError(
            f"{where}: a [[mount]] table takes prefix, app and optionally kind "
            f"(wsgi, asgi or auto); got {', '.join(sorted(table))}"
        )
    kind = str(table.get("kind", "auto"))
    return f"{table['prefix']}={'' if kind == 'auto' else kind + ':'}{table['app']}"


def _read_environ(environ: Mapping[str, str], schema: Mapping[str, Option]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    by_env = {option.env: option for option in schema.values()}
    for key, text in environ.items():
        if not key.startswith(ENV_PREFIX) or key == CONFIG_ENV:
            continue
        option = by_env.get(key)
        if option is None:
            known = ", ".join(sorted(by_env))
            raise ConfigError(f"unknown environment variable {key} (known: {known})")
        raw: Any = [part.strip() for part in text.split(",")] if option.repeatable else text
        found[option.name] = (raw, key)
    return found


def _read_toml(path: Path, schema: Mapping[str, Option]) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except OSError as error:
        raise ConfigError(f"config file {path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path}: not valid TOML: {error}") from None
    found: dict[str, Any] = {}
    for key, raw in data.items():
        name = key.replace("-", "_")
        if name not in schema:
            known = ", ".join(schema)
            raise ConfigError(f"unknown key {key!r} in config file {path} (known: {known})")
        found[name] = (raw, f"{key} in {path}")
    return found
