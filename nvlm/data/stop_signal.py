"""SIGTERM stops an `nvlm data` command the way Ctrl-C does: cleanly, with its own exit code.

Python's default for SIGTERM ends the process at once, so no `finally` runs: worker processes
and temporary files would stay behind. While `sigterm_stops()` is active, SIGTERM raises
`Interrupted` instead (exit 143 = 128 + 15), which unwinds through the same clean-up as any
error. A second SIGTERM while cleaning up ends the process at once (the default again).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from nvlm.errors import Interrupted


@contextmanager
def sigterm_stops(command: str, resume_note: str = "") -> Iterator[None]:
    """Within the block, SIGTERM raises `Interrupted` naming `command` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame) -> None:
        signal.signal(signum, signal.SIG_DFL)
        note = f"; {resume_note}" if resume_note else ""
        raise Interrupted(f"{command} stopped by SIGTERM{note}", signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
