"""The bundled example of a scheduled task: the time, recorded every second.

``GET /time`` answers the last recorded time in ISO 8601; with ``--time-file`` the same text
is also written to that file every second, atomically (a temporary file renamed over it), so
a reader never sees half a time.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from hello.ops.tasks import Scheduler


class Clock:
    def __init__(self, scheduler: Scheduler, time_file: Path | None = None) -> None:
        self.now: datetime | None = None
        self.time_file = time_file
        scheduler.every(1.0, per_worker=True)(self.record)  # each worker answers /time itself
        if time_file is not None:
            scheduler.every(1.0)(self.write)  # one writer, even with several workers

    async def record(self) -> None:
        self.now = datetime.now(UTC)

    def write(self) -> None:
        assert self.time_file is not None
        text = datetime.now(UTC).isoformat() + "\n"
        directory = self.time_file.parent
        handle, temporary = tempfile.mkstemp(prefix=".time-", dir=directory)
        try:
            with os.fdopen(handle, "w") as file:
                file.write(text)
            os.chmod(temporary, 0o644)
            os.replace(temporary, self.time_file)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
