"""One writer per output directory: two `nvlm data pretraining` runs into one --out would
delete and rebuild each other's shards.

The lock is `flock` on the directory itself (no lock file to leave behind or to clean), held by
the parent for the whole run; the kernel drops it when the process ends however it ends, so a
killed run never blocks its rerun. A file system that cannot lock directories (some network
mounts) runs unlocked rather than not at all.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nvlm.errors import UserError


@contextmanager
def directory_lock(directory: Path, command: str, option: str = "--out") -> Iterator[None]:
    """Hold an exclusive lock on `directory` (which must exist) while the block runs."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise UserError(
                    f"{option} {directory} is being written by another `{command}` right now",
                    hint=f"wait for it to end, or choose another {option}",
                ) from None
            # ENOLCK, EBADF on a mount without directory locks: go on without one.
        yield
    finally:
        os.close(fd)  # releases the lock
