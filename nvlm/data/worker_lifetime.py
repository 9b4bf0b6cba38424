"""Worker processes of `nvlm data` die with the process that started them.

A parent killed with SIGKILL (or the OOM killer, or SIGTERM before it can clean up) runs no
Python code, so it cannot stop its workers; orphaned workers would go on writing shards into a
directory that a rerun is already rebuilding. Each worker therefore calls `die_with_parent`
first thing:
- on Linux, prctl(PR_SET_PDEATHSIG, SIGKILL) makes the kernel kill it when the parent dies;
- everywhere, a watchdog thread checks os.getppid() and exits once the worker is reparented
  (the fallback where prctl is missing, e.g. macOS, within WATCH_SECONDS).
Ctrl-C reaches every process of the terminal's group: workers ignore SIGINT and the parent,
which gets it too, decides (it stops them and cleans up).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

WATCH_SECONDS = 0.5
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int) -> None:
    """Tie this (worker) process's life to `parent_pid`'s; call before any work."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no prctl (another libc): the watchdog below still ends us
    if parent_pid <= 0:
        return  # no parent to watch (called in-process)
    # The parent may have died before prctl took effect: then we already have another parent.
    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(
        target=_watch, args=(parent_pid,), name="nvlm-parent-watch", daemon=True
    ).start()


def _watch(parent_pid: int) -> None:
    while True:
        time.sleep(WATCH_SECONDS)
        if os.getppid() != parent_pid:
            # os._exit: no cleanup handlers, no flushing of half-written files; the rerun
            # removes what this worker left.
            os._exit(1)
