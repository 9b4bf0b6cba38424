"""No launcher and no rank outlives the nvlm process that started the job.

The parent may die without running a line of code (SIGKILL, the OOM killer, a closed terminal),
so two mechanisms that need nothing from it:

- the launcher is started with `die_with_parent()` (Linux PR_SET_PDEATHSIG): the kernel sends it
  SIGTERM when the parent ends; mpirun and horovodrun then end their ranks, on every host. For
  ranks on other hosts that is the only mechanism (a PID of this host means nothing there).
- every rank on the parent's host runs a `ParentWatch`: the parent's identity (PID, start time
  and host, in NVLM_SUPERVISOR, set by `Job` for the launcher, which passes its environment on to
  the ranks of this host) is checked twice a second; once the parent is gone the rank gives the
  launcher `grace_s` to stop it cleanly (SIGTERM: the agreed stop with a checkpoint), then leaves
  with `os._exit` whatever it is doing (stuck in an allreduce for a peer that was killed, say).

The start time makes a recycled PID count as gone. A rank that cannot see the parent when it
starts (another host, another PID namespace) does not watch: it would take a healthy job for an
orphan.
"""

from __future__ import annotations

import ctypes
import faulthandler
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping

SUPERVISOR_VARIABLE = "NVLM_SUPERVISOR"  # "PID:START:HOST" of the nvlm process that launched
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def process_start(pid: int) -> int | None:
    """The start time of process `pid` (clock ticks since boot), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    # Field 2 (the command name) may hold spaces and parentheses: split after the last ")".
    fields = stat.rsplit(b")", 1)[-1].split()
    if len(fields) < 20 or fields[0] == b"Z":  # a zombie has ended; its parent has not reaped it
        return None
    return int(fields[19])  # field 22, starttime


def identity(pid: int | None = None) -> str:
    """What NVLM_SUPERVISOR holds for process `pid` (this one by default)."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{process_start(pid) or 0}:{socket.gethostname()}"


def die_with_parent(signum: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` after which the child gets `signum` when this process ends, however it
    ends (None where Linux's prctl is missing).

    The kernel ties it to the THREAD that starts the child: start it from a thread that lives as
    long as the job (the main thread). SIGTERM rather than SIGKILL: mpirun and horovodrun then
    end their ranks (remote ones included) before they go."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        # Looked up here, in the parent: the child runs only the call (no dlopen after fork).
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
        if os.getppid() != parent:  # the parent ended before the call: no signal will come
            os._exit(1)

    return preexec


class ParentWatch:
    """Ends this rank once the nvlm process that launched its job is gone (a daemon thread)."""

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        poll_s: float = 0.5,
        grace_s: float = 3.0,
        before_exit: Callable[[str], None] | None = None,
    ) -> None:
        env = os.environ if env is None else env
        self.pid, self.start_time, self.host = _parse(env.get(SUPERVISOR_VARIABLE, ""))
        self.poll_s = poll_s
        self.grace_s = grace_s
        self.before_exit = before_exit  # e.g. record the rank's status; gets the message
        self.thread: threading.Thread | None = None

    @property
    def visible(self) -> bool:
        """The parent runs on this host and in this PID namespace (and is alive)."""
        return (
            self.pid is not None
            and self.host == socket.gethostname()
            and process_start(self.pid) == self.start_time
        )

    def start(self) -> bool:
        """Start watching; False when the parent cannot be seen from here."""
        if not self.visible:
            return False
        self.thread = threading.Thread(target=self._watch, name="nvlm-parent-watch", daemon=True)
        self.thread.start()
        return True

    def _watch(self) -> None:
        while process_start(self.pid) == self.start_time:
            time.sleep(self.poll_s)
        message = f"the nvlm process that started this job (PID {self.pid}) has ended"
        _say(f"nvlm: {message}; this rank ends in {self.grace_s:g} s")
        # The launcher's SIGTERM (it got one too) may still stop this rank with a checkpoint.
        # Not longer: horovodrun ends a rank 5 s after its SIGTERM, and a rank that has not
        # left by then is stuck (seen: over 3 s in a data pipeline's teardown, loaded machine).
        time.sleep(self.grace_s)
        if self.before_exit is not None:
            try:
                self.before_exit(message)
            except Exception:  # noqa: BLE001 - leaving is what matters now
                pass
        _say(f"nvlm: {message}; ending this rank, which was still at:")
        faulthandler.dump_traceback(all_threads=True)  # where it hung, for the record
        os._exit(1)


def _parse(value: str) -> tuple[int | None, int | None, str | None]:
    pid, _, rest = value.partition(":")
    start, _, host = rest.partition(":")
    if not (pid.isdigit() and start.isdigit() and host):
        return None, None, None
    return int(pid), int(start), host


def _say(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed
        pass
