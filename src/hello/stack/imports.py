"""Importing APP and the apps of ``--mount``, calling factories, telling WSGI from ASGI."""

from __future__ import annotations

import importlib
import inspect
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hello.config import AppSpec
from hello.errors import ConfigError


class AppImportError(ConfigError):
    """The user's module raised while being imported; ``detail`` is its traceback."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


def extend_path(directories: Sequence[Path]) -> None:
    """Put ``--pythonpath`` directories, then the current directory, in front of the import
    path, first given first: as uvicorn and gunicorn find ``mysite.wsgi`` where they run."""
    for directory in reversed([*directories, Path.cwd()]):
        entry = str(directory.resolve())
        if entry in sys.path:
            sys.path.remove(entry)
        sys.path.insert(0, entry)


def import_app(spec: AppSpec, label: str) -> tuple[Any, str]:
    """The object ``spec`` names and its kind, "wsgi" or "asgi"; ConfigError if it cannot be."""
    module_name, _, attribute = spec.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise ConfigError(
                f"{label}: no module named {missing!r} (is its directory given with --pythonpath?)"
            ) from None
        raise _import_failed(label, module_name, error) from None
    except Exception as error:
        raise _import_failed(label, module_name, error) from None
    app: Any = module
    for part in attribute.split("."):
        try:
            app = getattr(app, part)
        except AttributeError:
            raise ConfigError(
                f"{label}: module {module_name!r} has no attribute {attribute!r}"
            ) from None
    if spec.factory:
        if not callable(app):
            raise ConfigError(f"{label}: {spec.target} is a {type(app).__name__}, not callable")
        try:
            app = app()
        except Exception as error:
            raise _import_failed(label, f"{spec.target}()", error, "calling") from None
    if not callable(app):
        made = f"{spec.target}() returned" if spec.factory else f"{spec.target} is"
        raise ConfigError(f"{label}: {made} a {type(app).__name__}, not a WSGI or ASGI app")
    kind = spec.kind if spec.kind != "auto" else detect_kind(app)
    return app, kind


def detect_kind(app: Any) -> str:
    """ASGI apps are coroutine functions (or objects whose __call__ is one); else WSGI."""
    call = app if inspect.isroutine(app) else getattr(app, "__call__", None)  # noqa: B004
    if inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(app):
        return "asgi"
    return "wsgi"


def _import_failed(
    label: str, name: str, error: BaseException, doing: str = "importing"
) -> AppImportError:
    # Only the user's frames: those after the import machinery (ours and importlib's).
    stack = traceback.extract_tb(error.__traceback__)
    machinery = [i for i, frame in enumerate(stack) if "importlib" in frame.filename]
    frames = stack[machinery[-1] + 1 :] if machinery else stack[1:]
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames)]
    lines += traceback.format_exception_only(type(error), error)
    summary = traceback.format_exception_only(type(error), error)[-1].strip()
    return AppImportError(
        f"{label}: {doing} {name!r} failed with {summary} (its traceback is above)",
        "".join(lines),
    )
