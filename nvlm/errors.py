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
