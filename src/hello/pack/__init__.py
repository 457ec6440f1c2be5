"""``hello pack``: the user's project as one file, as dist/hello.pyz is the bundled site.

    hello pack --output mysite.pyz [--requirement requirements.txt]... [--source DIR]... APP

The file holds hello and the packages it runs on, copied from this installation (so the
packed server is the one tested here), the user's requirements, installed from wheels by pip
(from their index or ``--find-links``) under constraints that keep hello's own packages at the
versions installed here, and the user's code (``--source``, the current directory by default).
shiv packs it; its ``__main__`` is hello's launcher, and its entry point runs hello with APP as
its app, so ``./mysite.pyz --bind ... --acme-domain ...`` takes every flag of hello.

Reproducible as scripts/build is: timestamps from ``SOURCE_DATE_EPOCH`` (default: the newest
modification time among the sources), shiv's reproducible mode, files in sorted order. Compiled
packages make the file specific to this platform and Python version, as any wheel does.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import NoReturn

from hello.config.parsers import parse_app
from hello.errors import ConfigError, HelloError
from hello.pack.zipapp import launcher, replace_main

ENTRY_MODULE = "_hello_packed"
# Never copied from a --source directory: tools' caches, version control, virtual environments.
SKIPPED_NAMES = {"__pycache__", "node_modules", "build", "dist"}
ENTRY_POINT = '''"""The entry point of this file, made by hello pack: hello, serving {app}."""

from hello.cli import packed_entry


def main() -> None:
    packed_entry({app!r})
'''


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hello pack",
        description="Pack hello, APP's code and its requirements into one runnable zipapp.",
        allow_abbrev=False,
    )
    parser.add_argument("app", metavar="APP", help="the app the file serves: MODULE:ATTR")
    parser.add_argument("--output", "-o", type=Path, required=True, metavar="FILE")
    parser.add_argument(
        "--requirement",
        "-r",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="a pip requirements file of the app's dependencies, installed from wheels "
        "(repeatable)",
    )
    parser.add_argument(
        "--source",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="a directory whose contents go in as importable code (repeatable; default: the "
        "current directory); dot-files, __pycache__, build, dist and virtual environments "
        "are left out",
    )
    parser.add_argument(
        "--find-links", action="append", default=[], metavar="DIR|URL", help="passed to pip"
    )
    parser.add_argument("--index-url", metavar="URL", help="passed to pip")
    parser.add_argument("--no-index", action="store_true", help="passed to pip")
    parser.add_argument(
        "--extra",
        action="append",
        default=[],
        choices=["h3", "acme", "uvloop"],
        help="also pack this optional part of hello, as installed here (repeatable)",
    )
    parser.add_argument(
        "--python", default="/usr/bin/env python3", help="the shebang line's interpreter"
    )
    return parser


def main(argv: Sequence[str]) -> int:
    """``hello pack ARGS``: 0 when the file was written, 2 for a mistake the user can fix."""
    try:
        args = build_parser().parse_args(argv)
        pack(args)
    except HelloError as error:
        print(f"hello pack: error: {error}", file=sys.stderr)
        return error.exit_code
    return 0


def pack(args: argparse.Namespace) -> None:
    try:
        parse_app(args.app)
    except ValueError as error:
        raise ConfigError(f"APP {args.app!r}: {error}") from None
    sources: list[Path] = args.source or [Path.cwd()]
    for source in sources:
        if not source.is_dir():
            raise ConfigError(f"--source {source}: not a directory")
    for requirement in args.requirement:
        if not requirement.is_file():
            raise ConfigError(f"--requirement {requirement}: no such file")
    if importlib.util.find_spec("shiv") is None:
        raise ConfigError(
            "hello pack needs shiv, which this installation lacks; install hello with the "
            "pack extra (pip install '.[pack]' in its checkout)"
        ) from None
    output: Path = args.output.resolve()
    epoch = os.environ.get("SOURCE_DATE_EPOCH") or str(_newest(sources, output))
    env = os.environ | {"SOURCE_DATE_EPOCH": epoch, "PYTHONHASHSEED": "0"}
    closure = list(_closure("hello", set(args.extra)))
    with tempfile.TemporaryDirectory(prefix="hello-pack-") as scratch:
        site = Path(scratch) / "site-packages"
        site.mkdir()
        if args.requirement:
            _install(args, closure, site, Path(scratch), env)
        present = {_normal(path.name.split("-")[0]) for path in site.glob("*.dist-info")}
        for dist in closure:
            if _normal(dist.metadata["Name"]) not in present:
                _copy_distribution(dist, site)
        for source in sources:
            _copy_source(source.resolve(), site, output)
        (site / f"{ENTRY_MODULE}.py").write_text(ENTRY_POINT.format(app=args.app))
        packed = Path(scratch) / "packed.shiv"
        shiv = [sys.executable, "-m", "shiv", "--site-packages", str(site)]
        shiv += ["--reproducible", "--compressed", "-e", f"{ENTRY_MODULE}:main"]
        shiv += ["-p", args.python, "-o", str(packed)]
        _run(shiv, env, "shiv")
        output.parent.mkdir(parents=True, exist_ok=True)
        replace_main(packed, output, launcher())
    size = output.stat().st_size
    print(f"{output}: {size / 1e6:.1f} MB, serving {args.app}")


def _install(
    args: argparse.Namespace,
    closure: list[metadata.Distribution],
    site: Path,
    scratch: Path,
    env: dict[str, str],
) -> None:
    """pip installs the requirements into ``site``, hello's packages held at this
    installation's versions (a requirement that conflicts fails here, named by pip)."""
    constraints = scratch / "constraints.txt"
    pins = sorted(f"{d.metadata['Name']}=={d.version}" for d in closure if d.metadata["Name"])
    constraints.write_text("\n".join(pins) + "\n")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    pip += ["--no-compile", "--only-binary", ":all:", "--target", str(site)]
    pip += ["--constraint", str(constraints)]
    for requirement in args.requirement:
        pip += ["--requirement", str(requirement)]
    for link in args.find_links:
        pip += ["--find-links", link]
    if args.index_url:
        pip += ["--index-url", args.index_url]
    if args.no_index:
        pip.append("--no-index")
    _run(pip, env, "pip")
    shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts name this machine


def _run(command: list[str], env: dict[str, str], name: str) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        output = (done.stderr or done.stdout).strip()
        last = output.splitlines()[-1] if output else f"exit code {done.returncode}"
        if output:
            print(output, file=sys.stderr)
        raise ConfigError(f"{name} failed: {last}")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _closure(name: str, extras: set[str]) -> Iterator[metadata.Distribution]:
    """The installed distribution ``name`` and every one it needs here, each once."""
    seen: set[str] = set()
    pending = [(name, extras)]
    while pending:
        current, wanted = pending.pop()
        if _normal(current) in seen:
            continue
        try:
            dist = metadata.distribution(current)
        except metadata.PackageNotFoundError:
            raise ConfigError(f"{current} is needed but not installed here") from None
        seen.add(_normal(current))
        yield dist
        for requirement in dist.requires or []:
            needed = _needed(requirement, wanted)
            if needed is not None:
                pending.append((needed, set()))


def _needed(requirement: str, extras: set[str]) -> str | None:
    """The name ``requirement`` asks for with these ``extras`` on this platform, or None."""
    from packaging.requirements import Requirement

    parsed = Requirement(requirement)
    if parsed.marker is not None:
        environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
        if not any(parsed.marker.evaluate(environment) for environment in environments):
            return None
    return parsed.name


def _copy_distribution(dist: metadata.Distribution, site: Path) -> None:
    """Copy an installed distribution's files (its RECORD) into ``site``."""
    for file in dist.files or []:
        relative = file.as_posix()
        if relative.startswith("..") or "__pycache__" in file.parts:
            continue  # console scripts, byte code: neither belongs in the file
        if relative.endswith(".dist-info/direct_url.json"):
            continue  # names where it was installed from
        source = Path(str(dist.locate_file(file)))
        if source.is_file():
            target = site / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


def _copy_source(source: Path, site: Path, output: Path) -> None:
    for path in _source_files(source, output):
        target = site / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def _source_files(directory: Path, output: Path) -> Iterator[Path]:
    """The files of a --source directory that go in, in sorted order."""
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or path.name in SKIPPED_NAMES or path == output:
            continue
        if path.is_dir() and not (path / "pyvenv.cfg").exists():
            yield from _source_files(path, output)
        elif path.is_file() and path.suffix not in (".pyc", ".pyz"):
            yield path


def _newest(sources: Sequence[Path], output: Path) -> int:
    """The newest modification time among the sources: a rebuild of the same tree matches."""
    newest = 315532800  # 1980-01-01, the earliest a zip file can say
    for source in sources:
        for path in _source_files(source, output):
            newest = max(newest, int(path.stat().st_mtime))
    return newest
