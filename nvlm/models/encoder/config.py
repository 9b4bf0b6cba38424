"""Configuration rules shared by the encoder models (no TensorFlow import)."""

from __future__ import annotations


def pad_vocab(n: int, multiple: int = 8) -> int:
    """Round a vocabulary size up to a multiple of `multiple`.

    Tensor cores (and the CPU GEMM kernels) are fastest when the matmul dimensions are
    multiples of 8; NVIDIA's BERT pads 30522 to 30528 for this reason. The extra rows are never
    looked up and the model learns to give them no probability.

    >>> pad_vocab(30522)
    30528
    """
    if n <= 0 or multiple <= 0:
        raise ValueError(f"pad_vocab needs positive numbers, got n={n}, multiple={multiple}")
    return -(-n // multiple) * multiple
