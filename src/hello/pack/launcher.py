"""The ``__main__`` of hello.pyz and of every ``hello pack`` file: pick where shiv extracts,
tidy up old builds, then bootstrap.

shiv extracts the bundled packages to ``$SHIV_ROOT`` or ``~/.shiv`` and fails when the home
directory is missing or unwritable, as it is for service users. This launcher, run before
shiv's bootstrap, keeps ``$SHIV_ROOT`` when it is set (and a root fixed at build time), else
uses ``~/.shiv`` when the home directory is writable, else ``$XDG_RUNTIME_DIR/hello-pyz``, and
as a last resort a fresh private directory with an unpredictable name (``tempfile.mkdtemp``,
mode 0700) that is removed when the process exits. In a lasting root it removes extractions of
older builds of the same file, keeping only the newest one besides the running build.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

KEEP_PREVIOUS = 1  # extractions of earlier builds kept, for processes still running them


def _writable_dir(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def _lasting_root() -> Path | None:
    home = os.path.expanduser("~")  # $HOME, else the password database's entry
    if home != "~" and (_writable_dir(Path(home)) or _writable_dir(Path(home) / ".shiv")):
        return Path(home) / ".shiv"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and _writable_dir(Path(runtime)):
        return Path(runtime) / "hello-pyz"
    return None


def _private_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="hello-pyz-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


def _tidy(root: Path, name: str, build_id: str) -> None:
    """Remove extractions of older builds of ``name`` in ``root`` but the newest few."""
    current = f"{name}_{build_id}"
    try:
        others = [
            entry
            for entry in root.iterdir()
            if entry.name.startswith(f"{name}_")
            and entry.name != current
            and entry.is_dir()
            and not entry.name.endswith(".tmp")
        ]
    except OSError:
        return
    others.sort(key=lambda entry: entry.stat().st_mtime, reverse=True)
    for stale in others[KEEP_PREVIOUS:]:
        shutil.rmtree(stale, ignore_errors=True)
        (root / f".{stale.name}_lock").unlink(missing_ok=True)


def main() -> None:
    archive_path = Path(sys.argv[0]).resolve()
    with zipfile.ZipFile(archive_path) as archive:
        environment = json.loads(archive.read("environment.json"))
    if not os.environ.get("SHIV_ROOT") and not environment.get("root"):
        root = _lasting_root()
        if root is None:
            root = _private_root()
        else:
            _tidy(root, archive_path.name, environment["build_id"])
        os.environ["SHIV_ROOT"] = str(root)

    import _bootstrap  # type: ignore[import-not-found]  # shiv's, at the archive's root

    _bootstrap.bootstrap()


if __name__ == "__main__":
    main()
