"""What this machine offers for training: versions, Horovod's build, devices, launchers.

`nvlm doctor` prints it; it is the first thing to run on a new cluster.
"""

from __future__ import annotations

import os
import platform
import subprocess
from typing import Any

from nvlm.launch.command import LAUNCHERS, find_launcher


def _version_line(path: str) -> str | None:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = [ln.strip() for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
    return lines[0] if lines else None


def launchers() -> dict[str, dict[str, Any]]:
    found = {}
    for name in LAUNCHERS:
        path = find_launcher(name)
        found[name] = {
            "available": path is not None,
            "path": path,
            "version": _version_line(path) if path and name != "horovodrun" else None,
        }
    return found


def horovod() -> dict[str, Any]:
    try:
        import horovod
        import horovod.tensorflow as hvd
    except Exception as exc:  # ImportError, or a wheel built against another TensorFlow
        return {"installed": False, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    return {
        "installed": True,
        "version": horovod.__version__,
        "controllers": {"mpi": bool(hvd.mpi_built()), "gloo": bool(hvd.gloo_built())},
        "operations": {
            "nccl": bool(hvd.nccl_built()),
            "cuda": bool(hvd.cuda_built()),
            "rocm": bool(hvd.rocm_built()),
            "ddl": bool(hvd.ddl_built()),
            "oneccl": bool(hvd.ccl_built()),
        },
    }


def report() -> dict[str, Any]:
    """Everything `nvlm doctor` shows, as plain data."""
    import keras
    import tensorflow as tf

    from nvlm import __version__
    from nvlm.dist import cpu_cores

    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    found = launchers()
    slurm = os.environ.get("SLURM_JOB_ID")
    order = (["srun"] if slurm else []) + ["horovodrun", "mpirun"]
    auto = next((n for n in order if found[n]["available"]), None)
    hvd = horovod()
    if hvd.get("installed") and not hvd["controllers"]["mpi"] and auto == "mpirun":
        auto = None  # mpirun cannot start Horovod ranks without the MPI controller
    return {
        "nvlm": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "tensorflow": {"version": tf.__version__, "cuda_built": tf.test.is_built_with_cuda()},
        "keras": {"version": keras.__version__},
        "horovod": hvd,
        "devices": {"gpus": gpus, "cpu_cores": cpu_cores(), "cpu_count": os.cpu_count()},
        "launchers": found,
        "slurm_job": slurm,
        "auto_launcher": auto,
    }
