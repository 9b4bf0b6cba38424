"""A rank's log file and status file under RUN/logs/ (the child side of the launcher).

Every rank started by nvlm's launcher writes its stdout and stderr (rich progress on rank 0,
TensorFlow messages, a traceback) to RUN/logs/rank-N.log, and its state to
RUN/logs/rank-N.status.json: `running` with host and pid at start, then `ok` or `failed` with the
exit status and the error. The parent streams rank-0.log to the console and watches the status
files and the pids: that is how it names the rank that failed and its log, whichever launcher ran
the job. A rank killed outright (SIGKILL, a segfault) leaves `running`: its pid tells.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from nvlm.outputs import write_text
from nvlm.run_dir import LOGS


def log_path(run: Path, rank: int) -> Path:
    return Path(run) / LOGS / f"rank-{rank}.log"


def status_path(run: Path, rank: int) -> Path:
    return Path(run) / LOGS / f"rank-{rank}.status.json"


def read_status(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # not there yet, or being replaced
        return None


class RankLog:
    """Redirects this process's output to its log and records its state."""

    def __init__(self, run: Path, rank: int) -> None:
        self.run = Path(run)
        self.rank = rank
        self.path = log_path(run, rank)
        self.status = status_path(run, rank)
        self.ended = False  # finished() was called

    def redirect(self) -> None:
        """Send fds 1 and 2 (Python's and TensorFlow's C++ output alike) to the log, appending."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        sys.stdout.flush()
        sys.stderr.flush()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        # Line-buffered so that the parent streams rank 0 while it runs.
        sys.stdout.reconfigure(line_buffering=True)
        sys.stderr.reconfigure(line_buffering=True)

    def started(self) -> None:
        self._write({"state": "running", "started": time.time()})

    def finished(self, exit_code: int, error: str | None = None) -> None:
        self.ended = True
        state = "ok" if exit_code == 0 else "failed"
        self._write({"state": state, "exit_code": exit_code, "error": error, "ended": time.time()})

    def orphaned(self, why: str) -> None:
        """Record a failure (`why`) as the rank is ended from outside, unless it has ended."""
        if not self.ended:
            self.finished(1, why)

    def _write(self, fields: dict[str, Any]) -> None:
        record = {"rank": self.rank, "host": socket.gethostname(), "pid": os.getpid(), **fields}
        self.status.parent.mkdir(parents=True, exist_ok=True)
        write_text(self.status, json.dumps(record) + "\n")
