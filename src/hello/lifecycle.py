"""What the health endpoints report: has this process started serving, is it shutting down."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Lifecycle:
    """Shared by the server (which drains it) and the app (which reports it)."""

    started: bool = False
    draining: bool = False

    @property
    def ready(self) -> bool:
        return self.started and not self.draining
