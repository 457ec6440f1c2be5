"""The command line: flags generated from the Settings schema; the only place that exits.

``main(argv)`` returns the exit code: 0 after a clean stop, 2 for a configuration the user can
fix, 1 when the server could not start. Errors are one line on standard error, prefixed
``hello:``; a traceback only ever means a bug in hello.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from hello import __version__, config
from hello.errors import ConfigError, HelloError

DESCRIPTION = (
    "Serve APP, or the bundled hello site without one: HTTPS and HTTP/2 when --certfile and "
    f"--keyfile are given, plain HTTP/1.1 and h2c otherwise (default {config.DEFAULT_BIND}). "
    f"Every flag can also be set as a {config.ENV_PREFIX}* environment variable or a key in the "
    "--config file; flags win over variables, variables over the file."
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag raises ConfigError instead of exiting from inside the parser."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hello",
        description=DESCRIPTION,
        argument_default=argparse.SUPPRESS,
        allow_abbrev=False,  # a typo such as --keyfil must fail, not guess
    )
    parser.add_argument(
        "--version",
        action=_Version,
        nargs=0,
        help="show the version and the engine behind each protocol, and exit",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="build the app and request it in-process, print the results and exit 0 if they "
        "pass, else 1: the bundled site's / and /legacy/ must answer 200, an APP's / below 500 "
        "(for smoke tests and health checks)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        type=Path,
        help=f"TOML file of settings, keys named as the flags (also ${config.CONFIG_ENV})",
    )
    for option in config.options():
        default = option.default
        if option.positional:
            help = f"{option.help} (${option.env})"
            parser.add_argument(option.name, metavar=option.metavar, nargs="?", help=help)
            continue
        shown = " ".join(default) if isinstance(default, tuple) else default
        if option.parse is config.parse_bool:
            parser.add_argument(
                option.flag,
                dest=option.name,
                action=argparse.BooleanOptionalAction,
                help=f"{option.help} (${option.env}; default: {'on' if default else 'off'})",
            )
            continue
        parser.add_argument(
            option.flag,
            dest=option.name,
            metavar=option.metavar,
            action="append" if option.repeatable else "store",
            help=f"{option.help} (${option.env}"
            + ("" if default in (None, ()) else f"; default: {shown}")
            + ")",
        )
    return parser


def parse(argv: Sequence[str], environ: Mapping[str, str]) -> config.Settings:
    """Settings from the command line ``argv`` and the environment ``environ``."""
    return _parse(argv, environ)[0]


def _parse(
    argv: Sequence[str], environ: Mapping[str, str], packed_app: str | None = None
) -> tuple[config.Settings, bool]:
    namespace = vars(build_parser().parse_args(argv))
    config_file: Path | None = namespace.pop("config", None)
    check: bool = namespace.pop("check", False)
    flags: dict[str, Any] = namespace
    if flags.get("app", "") is None:
        del flags["app"]  # argparse's None for an absent APP: not a value the user gave
    defaults = {"app": (packed_app, PACKED_SOURCE)} if packed_app else {}
    settings = config.load(flags=flags, environ=environ, config_file=config_file, defaults=defaults)
    return settings, check


PACKED_SOURCE = "the packed APP"


def main(argv: Sequence[str] | None = None, packed_app: str | None = None) -> int:
    """Run hello with ``argv`` (default: the process's own arguments); return the exit code.

    ``packed_app`` is the APP a file made by ``hello pack`` serves unless told otherwise."""
    from hello.server import check, run  # imported late: --help and bad flags stay fast

    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] == ["pack"]:
        from hello.pack import main as pack_main

        return pack_main(arguments[1:])
    try:
        settings, checking = _parse(arguments, os.environ, packed_app)
        if checking:
            return 0 if check.run_check(settings) else 1
        # SIGHUP reads the same arguments, the environment and the config file once more.
        run.run(settings, reread=lambda: _parse(arguments, os.environ, packed_app)[0])
    except HelloError as error:
        detail = getattr(error, "detail", None)
        if detail:  # the user's own traceback, e.g. from a --mount module that failed
            print(detail.rstrip() + "\n", file=sys.stderr)
        print(f"hello: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 0
    return 0


def main_entry() -> NoReturn:
    """The ``hello`` console script."""
    raise SystemExit(main())


def packed_entry(app: str) -> NoReturn:
    """The entry point of a file made by ``hello pack``: hello, with ``app`` as its APP."""
    raise SystemExit(main(packed_app=app))


class _Version(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        print(_version())
        parser.exit()


def _version() -> str:
    """hello's version, and the engine (library and version) behind each protocol."""
    from hello.wire.choice import engines

    lines = [f"hello {__version__}"]
    for role, library, version in engines():
        lines.append(
            f"{role}: {library} {version}" if version else f"{role}: {library} not installed"
        )
    return "\n".join(lines)
