"""Reading a file a chunk at a time from the event loop, for static files and ASGI path send."""

from __future__ import annotations

import asyncio
import errno
import os

# Linux's preadv2(RWF_NOWAIT) reads what the page cache holds without blocking, and fails with
# EAGAIN instead of waiting for the disk. A file being served is almost always cached, so a
# chunk is read in the event loop and only a read that would wait goes to a thread, a hop that
# costs more than the read itself (docs/performance.md has the figures).
_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None)


async def read_at(fd: int, offset: int, size: int) -> bytes:
    """Up to ``size`` bytes of ``fd`` at ``offset`` (fewer at the end of the file): from the
    page cache at once where it can, else in a thread."""
    global _NOWAIT
    if _NOWAIT is not None:
        buffer = bytearray(size)
        try:
            got = os.preadv(fd, [buffer], offset, _NOWAIT)
        except BlockingIOError:
            got = 0  # not cached: the thread reads it (and the kernel reads ahead)
        except OSError as error:
            if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
            _NOWAIT, got = None, 0  # the file system does not offer it: threads from now on
        if got == size:
            return bytes(buffer)
        if got:
            return bytes(memoryview(buffer)[:got])
    return await asyncio.get_running_loop().run_in_executor(None, os.pread, fd, size, offset)
