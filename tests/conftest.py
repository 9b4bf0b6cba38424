"""Shared fixtures: small generated corpora (nothing read from outside the repo)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nvlm.data.demo_corpus import write_demo_corpus
from nvlm.data.vocab_trainer import train_vocab


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory) -> Path:
    """corpus.txt of 600 synthetic documents (one sentence per line, blank line between)."""
    out = tmp_path_factory.mktemp("demo-corpus")
    return Path(write_demo_corpus(out, documents=600, seed=7)["path"])


@pytest.fixture(scope="session")
def demo_vocab(demo_corpus, tmp_path_factory) -> Path:
    """A lowercase WordPiece vocab.txt (1000 tokens) trained on `demo_corpus`."""
    out = tmp_path_factory.mktemp("demo-vocab") / "vocab.txt"
    train_vocab([demo_corpus], 1000, out)
    return out


@pytest.fixture(autouse=True)
def _restore_precision_policy():
    """A test that sets the global Keras precision policy (bf16, amp) leaves the next test the
    policy it found, even when it fails."""
    import keras

    policy = keras.mixed_precision.global_policy()
    yield
    keras.mixed_precision.set_global_policy(policy)
