"""The last step of every hello zipapp (dist/hello.pyz and ``hello pack``'s): shiv's archive
with hello's launcher as its ``__main__.py``. Standard library only: scripts/build imports it
from the source tree."""

from __future__ import annotations

import zipfile
from importlib.resources import files
from pathlib import Path


def launcher() -> bytes:
    return files("hello.pack").joinpath("launcher.py").read_bytes()


def replace_main(packed: Path, output: Path, launcher: bytes) -> None:
    """Copy the archive, shebang and entries in order, with ``launcher`` as __main__.py."""
    data = packed.read_bytes()
    shebang = data[: data.index(b"\n") + 1]
    with zipfile.ZipFile(packed) as source, output.open("wb") as target:
        target.write(shebang)
        with zipfile.ZipFile(target, "w") as archive:
            for info in source.infolist():
                body = launcher if info.filename == "__main__.py" else source.read(info)
                archive.writestr(info, body, compress_type=info.compress_type)
    output.chmod(0o755)
