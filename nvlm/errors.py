"""Errors a user can cause, and how they reach the terminal.

A `UserError` is caught by the one handler in `nvlm.cli.main`: it prints ONE line on stderr
(what is wrong and how to fix it) and exits with status 2. Any other exception is an internal
failure: exit 1, with the traceback shown when NVLM_DEBUG=1.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad usage or bad input. The message names the thing and the fix, in one line."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        text = " ".join(message.split())
        if hint:
            text = f"{text} ({' '.join(hint.split())})"
        super().__init__(text)


class RunFailed(Exception):
    """A run that started correctly and failed (a dead rank, a diverged loss): exit 1."""

    exit_code = 1


class Interrupted(RunFailed):
    """A run stopped by a signal after saving its checkpoint: exit 128 + the signal's number
    (130 for Ctrl-C, 143 for SIGTERM), so that `nvlm pretrain ... && nvlm finetune ...` does not
    go on with a half-trained model."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = int(signum)
        self.exit_code = 128 + self.signum
