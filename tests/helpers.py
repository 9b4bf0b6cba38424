"""Helpers several test modules share: reading a run's checkpoint, killing a run mid-way."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import tensorflow as tf


def checkpoint_values(run: Path, prefix: str = "state/model_vars/") -> dict[str, np.ndarray]:
    """The tensors of RUN's latest checkpoint whose names start with `prefix`."""
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run / "checkpoints")))
    return {
        k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map() if k.startswith(prefix)
    }


def kill_after_checkpoint(command: list[str], run: Path, env: dict, step: int = 10) -> None:
    """Start `command` (which trains into `run`), SIGKILL it once checkpoint `step` is written."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pointer = run / "checkpoints" / "checkpoint"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if pointer.exists() and f"ckpt-{step}" in pointer.read_text():
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"


def error_line(result) -> str:
    """The one line a user sees for bad input (a CliRunner result): exit 2, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.stderr
    lines = [x for x in result.stderr.splitlines() if x.startswith("nvlm: error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def invoke(*args, **kwargs):
    """`nvlm ARGS...` in this process (Typer's CliRunner); arguments are str()-ed, exceptions
    other than the CLI's own exits propagate (a traceback, not a silent exit 1)."""
    from typer.testing import CliRunner

    from nvlm.cli.main import app

    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False, **kwargs)
