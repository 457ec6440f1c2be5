"""What the health endpoints report: has this process started serving, is it shutting down."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Lifecycle:
    """Shared by the server (which drains it) and the app (which reports it)."""

    started: bool = False
    draining: bool = False
    worker_index: int = 0  # 0 in the first worker (and when there is only one)

    @property
    def primary(self) -> bool:
        """Whether this worker runs the scheduled tasks that run once per server."""
        return self.worker_index == 0

    @property
    def ready(self) -> bool:
        return self.started and not self.draining
