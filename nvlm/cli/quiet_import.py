"""Silence the C++ banner lines TensorFlow 2.21 prints while it is imported ("oneDNN custom
operations are on", CPU feature notices). They are written through absl before
TF_CPP_MIN_LOG_LEVEL applies, so the only way to drop them is to point file descriptor 2 at
/dev/null for the duration of `import tensorflow`. The hook is lazy — commands that never
import TensorFlow (help, presets) stay fast — and is skipped with NVLM_DEBUG=1 or
TF_CPP_MIN_LOG_LEVEL=0. Python errors raised by the import still show: they are printed after
the descriptor is restored.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        try:
            self.loader.exec_module(module)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)


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
