"""The machine's dense matmul peak per precision: measured, cached, the denominator of every MFU.

A nominal peak from a data sheet (or a preset) is not what this machine does: a 2-core cloud
slice of an EPYC measured 0.88 TFLOP/s in bf16 against a preset's 0.38, and MFU came out at
124%. So nvlm times square matmuls itself, keeps the best window, and caches the figure per
machine (CPU model and cores, GPU names) and TensorFlow version in
~/.cache/nvlm/peak.json; `nvlm benchmark peak --refresh` measures again.

Precisions and what runs: fp32 (float32, TF32 math off), tf32 (float32 with TF32 math: GPUs of
compute capability >= 8 only; elsewhere the same as fp32), bf16 (bfloat16 inputs, as
mixed_bfloat16 runs its matmuls), amp (float16 inputs, as mixed_float16 does).
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

PRECISIONS = ("fp32", "tf32", "bf16", "amp")
_DTYPES = {"fp32": "float32", "tf32": "float32", "bf16": "bfloat16", "amp": "float16"}


@dataclass(frozen=True)
class Peak:
    precision: str
    tflops: float  # of the whole machine: all CPU cores, or one GPU
    size: int  # n of the n x n x n matmuls
    matmuls: int  # timed, in the best window
    seconds: float  # of the best window
    device: str  # "CPU" or the GPU's name
    measured_at: float  # unix time


def machine() -> dict[str, object]:
    """What makes a peak this machine's: CPU model, usable cores, GPUs, TensorFlow version."""
    import tensorflow as tf

    gpus = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        gpus.append(str(details.get("device_name", device.name)))
    return {
        "cpu": _cpu_model(),
        "cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "gpus": gpus,
        "tensorflow": tf.__version__,
    }


def cache_path() -> Path:
    from nvlm.outputs import cache_home

    return cache_home() / "peak.json"


def cached(precision: str) -> Peak | None:
    """The cached peak of this machine for `precision`, if measured before."""
    entry = _read_cache().get(_key(), {}).get(precision)
    return Peak(**entry) if entry else None


def peak(precision: str, *, refresh: bool = False, seconds: float = 1.5) -> Peak:
    """This machine's peak for `precision`: from the cache, or measured (and cached)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} (one of {', '.join(PRECISIONS)})")
    if not refresh:
        found = cached(precision)
        if found is not None:
            return found
    result = measure(precision, seconds=seconds)
    _write_cache(result)
    return result


def measure(precision: str, *, size: int | None = None, seconds: float = 1.5) -> Peak:
    """Time n x n x n matmuls of `precision` for about `seconds`; the best of 3 windows.

    Each timed window ends by reading a value of the last product back to the host, so the
    device has finished the work timed (GPU kernels run asynchronously). Inputs are created
    once on the device; one matmul is 2 n^3 floating-point operations."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    device = "/GPU:0" if gpus else "/CPU:0"
    name = machine()["gpus"][0] if gpus else "CPU"
    # Big enough to reach the GEMM kernels' plateau, small enough for a quick first call:
    # 2048^3 x 2 = 17 GFLOP, ~0.1 s on 2 CPU cores.
    n = size or (8192 if gpus else 2048)
    tf32_before = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(precision == "tf32")
    try:
        with tf.device(device):
            dtype = tf.as_dtype(_DTYPES[precision])
            a = tf.random.stateless_uniform((n, n), seed=(1, 2), minval=-1, maxval=1, dtype=dtype)
            b = tf.random.stateless_uniform((n, n), seed=(3, 4), minval=-1, maxval=1, dtype=dtype)
            matmul = tf.function(tf.linalg.matmul)
            float(matmul(a, b)[0, 0])  # trace, allocate, warm the kernels
            best = None
            for _ in range(3):
                count, t0 = 0, time.perf_counter()
                while True:
                    c = matmul(a, b)
                    count += 1
                    if time.perf_counter() - t0 >= seconds / 3:
                        float(c[0, 0])  # read back: everything timed has run
                        break
                elapsed = time.perf_counter() - t0
                rate = 2.0 * n**3 * count / elapsed
                if best is None or rate > best[0]:
                    best = (rate, count, elapsed)
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(tf32_before)
    rate, count, elapsed = best
    return Peak(precision, rate / 1e12, n, count, elapsed, name, time.time())


def peak_flops(precision: str, processes: int = 1) -> float:
    """FLOP/s of the devices a run uses: one GPU's peak x processes on GPUs; on a CPU the
    whole machine's (processes share its cores)."""
    import tensorflow as tf

    p = peak(precision)
    on_gpus = bool(tf.config.list_physical_devices("GPU"))
    return p.tflops * 1e12 * (processes if on_gpus else 1)


def _key() -> str:
    m = machine()
    gpus = "+".join(m["gpus"]) or "no GPU"
    return f"{m['cpu']} | {m['cores']} cores | {gpus} | TF {m['tensorflow']}"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _read_cache() -> dict:
    try:
        return json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return {}


def _write_cache(result: Peak) -> None:
    from nvlm.outputs import write_text

    data = _read_cache()
    data.setdefault(_key(), {})[result.precision] = asdict(result)
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(data, indent=2) + "\n")
    except OSError:
        pass  # a read-only home: measure again next time rather than fail a run
