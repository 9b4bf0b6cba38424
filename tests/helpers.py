"""The test harness several modules share: running `nvlm` in-process and reading its result
(`invoke`, `ok`, `json_of`, `error_line`), reading a run's checkpoint, killing a run mid-way.
The tiny data sets are session fixtures in conftest.py."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import numpy as np

# Sentences a tiny model learns to predict from their neighbours: conftest.py cycles through them
# to make `repetitive_corpus` (BERT, ELECTRA) and `txl_corpus` (Transformer-XL).
SENTENCES = [
    "the cat sat on the mat .",
    "a dog ran in the park .",
    "birds sing in the morning .",
    "she likes green apples .",
    "he plays the old piano .",
    "the river runs to the sea .",
    "we bake bread on sunday .",
    "my friend reads many books .",
]
TXL_SENTENCES = [
    "the cat sat on the mat .",
    "a dog ran in the park .",
    "birds sing in the morning .",
    "she likes green apples .",
    "we bake bread on sunday .",
]


def invoke(*args, **kwargs):
    """`nvlm ARGS...` in this process (Typer's CliRunner); arguments are str()-ed, exceptions
    other than the CLI's own exits propagate (a traceback, not a silent exit 1)."""
    from typer.testing import CliRunner

    from nvlm.cli.main import app

    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False, **kwargs)


def ok(result):
    """`result` (of `invoke`) after checking that the command succeeded."""
    assert result.exit_code == 0, result.output
    return result


def json_of(result) -> dict:
    """The JSON object a successful `--json` command printed (stdout from its first `{`)."""
    ok(result)
    return json.loads(result.stdout[result.stdout.index("{") :])


def error_line(result, code: int = 2) -> str:
    """The one line a user sees when a command refuses its input (exit 2) or its run fails
    (`code=1`): the exit code, no traceback, exactly one `nvlm:` line on stderr, an error, and
    the last thing printed (progress notes may come before it)."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.stderr
    lines = [x for x in result.stderr.splitlines() if x.startswith("nvlm:")]
    assert len(lines) == 1 and lines[0].startswith("nvlm: error: "), result.stderr
    assert result.stderr.strip().endswith(lines[0]), result.stderr
    return lines[0]


def checkpoint_values(run: Path, prefix: str = "state/model_vars/") -> dict[str, np.ndarray]:
    """The tensors of RUN's latest checkpoint whose names start with `prefix`."""
    import tensorflow as tf  # here, not at the top: conftest imports this module for `invoke`

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
