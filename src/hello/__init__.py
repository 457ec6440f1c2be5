"""hello: one Python file that serves a real website with nothing in front of it."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hello")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
