"""Wheel build hook: precompress the bundled site and record when it last changed.

For every compressible file under static/ it adds ``NAME.br`` (brotli, quality 11) and
``NAME.gz`` (gzip, level 9, no timestamp) beside it in the wheel, when they are smaller, and
``hello/static-manifest.json`` with the Last-Modified time of the bundle: SOURCE_DATE_EPOCH when
set (scripts/build sets it from the last commit), else the newest file's modification time.
Byte-identical output for identical input, so builds stay reproducible.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import brotli
from hatchling.builders.hooks.plugin.interface import BuildHookInterface

COMPRESSIBLE = {".html", ".css", ".js", ".mjs", ".json", ".svg", ".txt", ".xml", ".ico", ".map"}


class StaticBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version == "editable":
            return  # a development install serves static/ as it is, uncompressed
        source = Path(self.root) / "static"
        out = self._scratch = Path(tempfile.mkdtemp(prefix="hello-static-"))
        files = sorted(path for path in source.rglob("*") if path.is_file())
        for path in files:
            if path.suffix.lower() not in COMPRESSIBLE:
                continue
            data = path.read_bytes()
            name = path.relative_to(source).as_posix()
            for suffix, packed in (
                (".br", brotli.compress(data, quality=11)),
                (".gz", gzip.compress(data, 9, mtime=0)),
            ):
                if len(packed) < len(data):
                    target = out / (name + suffix)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(packed)
                    build_data["force_include"][str(target)] = f"hello/static/{name}{suffix}"
        epoch = os.environ.get("SOURCE_DATE_EPOCH")
        last_modified = int(epoch) if epoch else max(int(p.stat().st_mtime) for p in files)
        manifest = out / "static-manifest.json"
        manifest.write_text(json.dumps({"last_modified": last_modified}) + "\n")
        build_data["force_include"][str(manifest)] = "hello/static-manifest.json"

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        scratch = getattr(self, "_scratch", None)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
