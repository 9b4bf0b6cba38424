"""Run a launcher command and watch it until every rank has ended (the parent side).

The parent streams RUN/logs/rank-0.log (rank 0's console, rich progress included) to its own
stderr and keeps the launcher's own output in RUN/logs/launcher.log. It never hangs on a dead
rank: every poll it reads the ranks' status files and, for ranks on this host, checks their pids.
Once a rank has failed, the launcher gets `grace_s` to end the job (mpirun and srun
--kill-on-bad-exit do at once, horovodrun within seconds); after that the parent ends the launcher
and the ranks on this host itself. The result names the rank that failed first and its log.

Ctrl-C or SIGTERM (e.g. Slurm pre-emption of a job that runs nvlm in its batch script): the first
one asks the ranks to stop (they agree on a step, rank 0 checkpoints, all exit 0; the result
carries the signal, and the command exits 130 / 143; re-running it resumes); the second one ends
the job at once. If the parent itself dies (SIGKILL), nothing outlives it: see
nvlm.launch.parent_watch.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from nvlm.launch.command import LaunchCommand
from nvlm.launch.parent_watch import SUPERVISOR_VARIABLE, die_with_parent, identity
from nvlm.launch.rank_log import log_path, read_status, status_path
from nvlm.run_dir import LOGS

GRACE_ENV = "NVLM_LAUNCH_GRACE_S"
DEFAULT_GRACE_S = 30.0
# Errors a rank reports because ANOTHER rank went away (not the cause of a failure).
_COLLATERAL = re.compile(
    r"Horovod has been shut down|HorovodInternalError|Connection (closed|reset) by peer|"
    r"gloo|Broken pipe|ended the job",
    re.IGNORECASE,
)
# How each launcher names the first rank that failed.
_LAUNCHER_RANK = [
    re.compile(r"Process name: \[\[\d+,\d+\],(\d+)\]"),  # mpirun
    re.compile(r"process rank (\d+) with PID"),  # mpirun, killed by a signal
    re.compile(r"The first process to do so was:\s*Process name: (\d+)"),  # horovodrun
    re.compile(r"Process (\d+) exit with status code"),  # horovodrun, per process
    re.compile(r"srun: error: \S+: tasks? (\d+)"),  # srun
]


@dataclass(frozen=True)
class RankFailure:
    rank: int
    exit_code: int | None  # None: killed or crashed without reporting
    error: str | None
    when: float

    @property
    def collateral(self) -> bool:
        return bool(self.error and _COLLATERAL.search(self.error))

    def describe(self) -> str:
        if self.exit_code is None:
            return "ended without reporting (killed by a signal or crashed)"
        return f"exit status {self.exit_code}" + (f": {self.error}" if self.error else "")


@dataclass(frozen=True)
class JobResult:
    exit_code: int  # 0, or the worst status of a rank (1 failure, 2 bad input)
    failed: RankFailure | None
    log: Path | None  # the log of the rank that failed first
    launcher_status: int
    message: str | None  # one line for the user when exit_code != 0
    interrupted: bool
    signum: int | None = None  # the first SIGINT / SIGTERM the parent got


class Job:
    """One launcher process and the ranks it starts."""

    def __init__(
        self,
        command: LaunchCommand,
        *,
        run: Path,
        processes: int,
        env: Mapping[str, str],
        grace_s: float | None = None,
        stream: IO[bytes] | None = None,
        say: Callable[[str], None] = print,
        poll_s: float = 0.1,
        keep_fds: tuple[int, ...] = (),
    ) -> None:
        self.command = command
        # RUN's lock: the launcher inherits it, so that RUN stays locked until the launcher
        # (which waits for its ranks) has ended, even if this process is killed first.
        self.keep_fds = keep_fds
        self.run = Path(run)
        self.processes = processes
        # The ranks of this host end if this process dies without ending them (parent_watch).
        self.env = {**env, **command.env, SUPERVISOR_VARIABLE: identity()}
        self.grace_s = float(env.get(GRACE_ENV, DEFAULT_GRACE_S)) if grace_s is None else grace_s
        self.stream = stream if stream is not None else _binary(sys.stderr)
        self.say = say
        self.poll_s = poll_s
        self.logs = self.run / LOGS
        self.host = socket.gethostname()
        self.proc: subprocess.Popen | None = None
        self.failures: dict[int, RankFailure] = {}
        self.signals = 0
        self.signum: int | None = None
        self.killed = False

    # -- the watch loop ------------------------------------------------------------------------
    def run_to_end(self) -> JobResult:
        self._clear_old_logs()
        launcher_log = self.logs / "launcher.log"
        tail = _Tail(log_path(self.run, 0), self.stream)
        with launcher_log.open("wb") as out, _Signals(self._on_signal):
            self.proc = subprocess.Popen(
                self.command.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Its own session: Ctrl-C at the terminal reaches this process only, which stops
                # the ranks cleanly. So that the launcher still ends with this process (SIGKILL
                # included), the kernel sends it SIGTERM then.
                start_new_session=True,
                preexec_fn=die_with_parent(),
                pass_fds=self.keep_fds,
            )
            first_failure_at = None
            checked = 0.0
            while True:
                tail.pump()
                # Reading every rank's status file is cheap for 8, not for 512 on a shared file
                # system: at most every poll_s x (1 + ranks / 64) (0.1 s for 8, 0.9 s for 512).
                if time.monotonic() - checked > self.poll_s * (1 + self.processes / 64):
                    self._check_ranks()
                    checked = time.monotonic()
                if self.proc.poll() is not None:
                    break
                if self.failures and first_failure_at is None:
                    first_failure_at = time.monotonic()
                    first = self._first_failure()
                    self.say(f"rank {first.rank} failed ({first.describe()}); ending the job")
                if (
                    first_failure_at is not None
                    and not self.killed
                    and time.monotonic() - first_failure_at > self.grace_s
                ):
                    self._kill_all()
                time.sleep(self.poll_s)
            self._reap_local_ranks()
            tail.pump()
            self._check_ranks(final=True)
        return self._result(launcher_log)

    def _clear_old_logs(self) -> None:
        """The previous attempt's logs become rank-N.log.1 (why did it fail?); statuses go."""
        self.logs.mkdir(parents=True, exist_ok=True)
        for rank in range(self.processes):
            status_path(self.run, rank).unlink(missing_ok=True)
            log = log_path(self.run, rank)
            if log.exists():
                os.replace(log, log.with_name(log.name + ".1"))

    def _statuses(self) -> dict[int, dict]:
        found = {}
        for rank in range(self.processes):
            status = read_status(status_path(self.run, rank))
            if status is not None:
                found[rank] = status
        return found

    def _check_ranks(self, final: bool = False) -> None:
        now = time.time()
        for rank, status in self._statuses().items():
            if rank in self.failures:
                continue
            if status.get("state") == "failed":
                self.failures[rank] = RankFailure(
                    rank,
                    int(status.get("exit_code") or 1),
                    status.get("error"),
                    status.get("ended", now),
                )
            elif status.get("state") == "running" and self._is_local(status):
                if not _alive(int(status["pid"])):
                    again = read_status(status_path(self.run, rank))  # it may just have finished
                    if again and again.get("state") == "running":
                        self.failures[rank] = RankFailure(rank, None, None, now)
            elif status.get("state") == "running" and final and self.killed:
                self.failures[rank] = RankFailure(rank, None, "ended by the launcher", now)

    def _is_local(self, status: Mapping) -> bool:
        return status.get("host") == self.host and "pid" in status

    def _local_pids(self) -> list[int]:
        return [
            int(s["pid"])
            for s in self._statuses().values()
            if s.get("state") == "running" and self._is_local(s) and _alive(int(s["pid"]))
        ]

    # -- stopping --------------------------------------------------------------------------------
    def _on_signal(self, signum: int) -> None:
        self.signals += 1
        if self.signals == 1:
            self.signum = signum
            self.say(
                "stopping: the ranks finish their step (a training run saves its checkpoint; "
                "press Ctrl-C again to end them at once)"
            )
            statuses = self._statuses()
            pids = self._local_pids()
            if (
                pids
                and len(statuses) == self.processes
                and all(self._is_local(s) for s in statuses.values())
            ):
                for pid in pids:
                    _kill(pid, signal.SIGTERM)
            elif self.proc is not None:
                _killpg(self.proc.pid, signal.SIGTERM)  # the launcher forwards it to the ranks
        else:
            self._kill_all()

    def _kill_all(self) -> None:
        """End the launcher and every rank on this host (ranks stuck in a collective included)."""
        self.killed = True
        for pid in self._local_pids():
            _kill(pid, signal.SIGKILL)
        if self.proc is not None and self.proc.poll() is None:
            _killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                _killpg(self.proc.pid, signal.SIGKILL)

    def _reap_local_ranks(self) -> None:
        """A launcher that died (or was killed) may leave ranks behind: end them."""
        deadline = time.monotonic() + 5
        while self._local_pids() and time.monotonic() < deadline:
            time.sleep(self.poll_s)
        for pid in self._local_pids():
            _kill(pid, signal.SIGKILL)

    # -- the verdict -----------------------------------------------------------------------------
    def _first_failure(self, launcher_text: str = "") -> RankFailure:
        causes = [f for f in self.failures.values() if f.exit_code is not None and not f.collateral]
        if causes:
            return min(causes, key=lambda f: f.when)
        named = _launcher_rank(launcher_text)
        if named is not None and named in self.failures:
            return self.failures[named]
        if named is not None:
            return RankFailure(named, None, None, time.time())
        return min(self.failures.values(), key=lambda f: (f.when, f.rank))

    def _result(self, launcher_log: Path) -> JobResult:
        status = self.proc.returncode if self.proc else 1
        text = _read_tail(launcher_log)
        interrupted, signum = self.signals > 0, self.signum
        if not self.failures and status == 0:
            return JobResult(0, None, None, 0, None, interrupted, signum)
        if not self.failures and _launcher_rank(text) is None:
            last = next((ln for ln in reversed(text.splitlines()) if ln.strip()), "no output")
            message = (
                f"{self.command.argv[0]} exited with status {status} before the ranks "
                f"reported ({last.strip()}); see {launcher_log}"
            )
            return JobResult(1, None, None, status, message, interrupted, signum)
        first = self._first_failure(text)
        codes = [f.exit_code for f in self.failures.values() if f.exit_code]
        worst = max([1, *codes])
        log = log_path(self.run, first.rank)
        later = [str(r) for r in sorted(self.failures) if r != first.rank]
        others = f"; after it ended: rank {', '.join(later)}" if later else ""
        message = (
            f"rank {first.rank} failed ({first.describe()}); its log: {log}{others} "
            f"(launcher output: {launcher_log})"
        )
        return JobResult(worst, first, log, status, message, interrupted, signum)


def _launcher_rank(text: str) -> int | None:
    for pattern in _LAUNCHER_RANK:
        match = pattern.search(text)
        if match:
            return int(match[1])
    return None


class _Tail:
    """Copies what is appended to a file (created later, maybe) to a binary stream."""

    def __init__(self, path: Path, out: IO[bytes]) -> None:
        self.path = path
        self.out = out
        self.fh = None

    def pump(self) -> None:
        if self.fh is None:
            try:
                self.fh = self.path.open("rb")
            except FileNotFoundError:
                return
        data = self.fh.read()
        if data:
            self.out.write(data)
            self.out.flush()


class _Signals:
    """SIGINT/SIGTERM go to a callback while the job runs (main thread only)."""

    def __init__(self, callback: Callable[[int], None]) -> None:
        self.callback = callback
        self.saved: dict[int, object] = {}

    def __enter__(self) -> _Signals:
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self.saved[signum] = signal.signal(signum, lambda s, f: self.callback(s))
            except ValueError:  # not the main thread
                pass
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self.saved.items():
            signal.signal(signum, handler)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has ended; its parent (the launcher) just has not reaped it yet
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _killpg(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _read_tail(path: Path, limit: int = 65536) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - limit))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _binary(stream) -> IO[bytes]:
    return getattr(stream, "buffer", stream)
