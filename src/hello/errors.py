"""Errors a user can act on. Only ``cli.main`` turns them into a message and an exit code."""

from __future__ import annotations


class HelloError(Exception):
    """Base class: the message is one line that names what was wrong and where it came from."""

    exit_code = 1


class ConfigError(HelloError):
    """A setting is malformed, unknown or impossible (exit code 2)."""

    exit_code = 2


class CertificateError(ConfigError):
    """A certificate or key is missing, unreadable, malformed or mismatched (exit code 2)."""


class StartupError(HelloError):
    """The configuration is fine but the server could not start, e.g. a port in use (exit 1)."""

    exit_code = 1
