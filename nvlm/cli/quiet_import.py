"""Silence the C++ lines TensorFlow 2.21 prints on every start ("oneDNN custom operations are
on", CPU feature notices, and with the CUDA build on a machine without a GPU "failed call to
cuInit" and "Unable to register cuDNN factory"), and keep its real errors visible.

They are written through absl before TF_CPP_MIN_LOG_LEVEL applies, or at level ERROR (cuInit),
so the environment variable alone cannot drop them: file descriptor 2 is pointed at a temporary
file for the duration of `import tensorflow` and of the first look at the devices (where CUDA
is initialised: done here on purpose, so that cuInit happens inside the window), then every
captured line that is not known noise is written back to stderr. The hook is lazy — commands
that never import TensorFlow (help, presets) stay fast — and is skipped with NVLM_DEBUG=1 or
TF_CPP_MIN_LOG_LEVEL=0. Python errors raised by the import still show: they propagate after the
descriptor is restored.
"""

from __future__ import annotations

import glob
import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile

# absl/glog line prefixes: "E0000 00:00:1712.5 123 file.cc:45] ..." (TF >= 2.16) or
# "2023-10-10 10:10:10.123456: E tensorflow/..." (older builds).
_PREFIX = re.compile(r"^(?:\d{4}-\d\d-\d\d [\d:.]+: )?([IWEF])(?:\d{4} |\s)")
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
# Lines that say nothing about the run, whatever their level.
_NOISE = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "oneDNN custom operations are on",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions:",
    # The CUDA build registers its plugins twice (TF and XLA): harmless, printed at ERROR.
    "Unable to register cuDNN factory",
    "Unable to register cuFFT factory",
    "Unable to register cuBLAS factory",
    "computation placer already registered",
    "Could not find cuda drivers on your machine, GPU will not be used",
    "TF-TRT Warning: Could not find TensorRT",
)
_CUINIT = "failed call to cuInit"


def gpu_expected() -> bool:
    """Whether this process should see an NVIDIA GPU: a device node exists and
    CUDA_VISIBLE_DEVICES does not hide them all. Without one, a failed cuInit is the expected
    outcome of the CUDA build on a CPU machine; with one it is a real error."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "unset").strip() in ("", "-1"):
        return False
    return bool(glob.glob("/dev/nvidia[0-9]*"))


def keep_line(line: str, *, gpu: bool, min_level: int = 2) -> bool:
    """Whether a line TensorFlow wrote while importing (or finding devices) is shown."""
    if any(text in line for text in _NOISE):
        return False
    if _CUINIT in line:
        return gpu
    match = _PREFIX.match(line)
    if match and _SEVERITY[match.group(1)] < min_level:
        return False
    return bool(line.strip())


def _min_level() -> int:
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    except ValueError:
        return 2


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        captured = tempfile.TemporaryFile()
        saved = os.dup(2)
        sys.stderr.flush()
        os.dup2(captured.fileno(), 2)
        try:
            self.loader.exec_module(module)
            _find_devices(module)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            _replay(captured)


def _find_devices(tf) -> None:
    # CUDA is initialised (and cuInit may fail) the first time TensorFlow looks at devices:
    # do it now, inside the window. Listing physical devices leaves set_visible_devices and
    # memory growth free to be set later (Horovod's per-rank GPU choice).
    try:
        tf.config.list_physical_devices()
    except Exception:  # the first real use reports it, with its traceback
        pass


def _replay(captured) -> None:
    captured.seek(0)
    text = captured.read().decode("utf-8", errors="replace")
    captured.close()
    gpu, level = gpu_expected(), _min_level()
    kept = [line for line in text.splitlines() if keep_line(line, gpu=gpu, min_level=level)]
    if kept:
        sys.stderr.write("\n".join(kept) + "\n")
        sys.stderr.flush()


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # one shot
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    if os.environ.get("NVLM_DEBUG") == "1" or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        return
    if "tensorflow" in sys.modules:
        return
    if not any(isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())
