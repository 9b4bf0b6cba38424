"""Shared fixtures: small generated data, built once per session (nothing read from outside the
repo). A test that changes a fixture's files works on a copy (shutil.copytree to tmp_path)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from helpers import SENTENCES, TXL_SENTENCES, invoke, ok

from nvlm.data.demo_corpus import write_demo_corpus
from nvlm.data.vocab_trainer import train_vocab

SQUAD = Path(__file__).parent / "fixtures" / "squad"


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


@pytest.fixture(scope="session")
def rank_shards(demo_corpus, demo_vocab, tmp_path_factory) -> Path:
    """BERT shards of `demo_corpus` for runs on 2 processes: seq 32, one shard per rank, and the
    same number of masked tokens in every example (masked_lm_prob 0.5 of 32 full-length tokens,
    capped by max_predictions 5), which makes 1- and 2-rank runs end with equal weights
    (tests/test_distributed.py)."""
    out = tmp_path_factory.mktemp("rank-shards") / "shards"
    ok(invoke("data", "pretraining", "--model", "bert", "--input", demo_corpus,
              "--vocab", demo_vocab, "--out", out, "--seq-len", 32, "--max-predictions", 5,
              "--masked-lm-prob", 0.5, "--short-seq-prob", 0, "--dupe-factor", 1,
              "--shards", 2, "--workers", 1))  # fmt: skip
    return out


@pytest.fixture(scope="session")
def repetitive_corpus(tmp_path_factory) -> Path:
    """A directory with corpus.txt (200 documents of 4 consecutive `SENTENCES`) and its
    vocab.txt (200 WordPiece tokens): the text the tiny BERT and ELECTRA learn from."""
    root = tmp_path_factory.mktemp("repetitive-corpus")
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(200):
        k = int(rng.integers(len(SENTENCES)))
        lines += [SENTENCES[(k + j) % len(SENTENCES)] for j in range(4)] + [""]
    (root / "corpus.txt").write_text("\n".join(lines) + "\n")
    ok(invoke("data", "vocab", "--input", root / "corpus.txt", "--vocab-size", 200,
              "--out", root / "vocab.txt"))  # fmt: skip
    return root


@pytest.fixture(scope="session")
def bert_shards(repetitive_corpus) -> Path:
    """`repetitive_corpus` as BERT shards: seq 32, 5 predictions, 2 shards."""
    out = repetitive_corpus / "bert-shards"
    ok(invoke("data", "pretraining", "--model", "bert", "--input",
              repetitive_corpus / "corpus.txt", "--vocab", repetitive_corpus / "vocab.txt",
              "--out", out, "--seq-len", 32, "--max-predictions", 5, "--dupe-factor", 3,
              "--shards", 2, "--workers", 1))  # fmt: skip
    return out


@pytest.fixture(scope="session")
def electra_shards(repetitive_corpus) -> Path:
    """`repetitive_corpus` as ELECTRA shards (unmasked: the generator masks): seq 32, 2 shards."""
    out = repetitive_corpus / "electra-shards"
    ok(invoke("data", "pretraining", "--model", "electra", "--input",
              repetitive_corpus / "corpus.txt", "--vocab", repetitive_corpus / "vocab.txt",
              "--out", out, "--seq-len", 32, "--dupe-factor", 3, "--shards", 2,
              "--workers", 1))  # fmt: skip
    return out


@pytest.fixture(scope="session")
def txl_corpus(tmp_path_factory) -> Path:
    """A Transformer-XL LM directory (`nvlm data lm`): train = 1500 lines cycling through
    `TXL_SENTENCES`, valid and test = 200 and 100 lines of the same cycle."""
    root = tmp_path_factory.mktemp("txl-corpus")
    lines = [TXL_SENTENCES[i % len(TXL_SENTENCES)] for i in range(1500)]
    (root / "train.txt").write_text("\n".join(lines) + "\n")
    (root / "valid.txt").write_text("\n".join(lines[3:203]) + "\n")
    (root / "test.txt").write_text("\n".join(lines[1:101]) + "\n")
    ok(invoke("data", "lm", "--train", root / "train.txt", "--valid", root / "valid.txt",
              "--test", root / "test.txt", "--out", root / "lm"))  # fmt: skip
    return root / "lm"


@pytest.fixture(scope="session")
def squad_contexts(tmp_path_factory) -> Path:
    """The paragraphs of tests/fixtures/squad/tiny-v1.1.json as pretraining text (one sentence
    per line, a blank line after each paragraph), to pretrain a model that then learns SQuAD
    with the fixture vocab (vocab-uncased.txt)."""
    out = tmp_path_factory.mktemp("squad-contexts") / "ctx.txt"
    data = json.loads((SQUAD / "tiny-v1.1.json").read_text())
    lines = []
    for article in data["data"]:
        for para in article["paragraphs"]:
            lines += re.split(r"(?<=[.!?]) ", para["context"]) + [""]
    out.write_text("\n".join(lines) + "\n")
    return out


@pytest.fixture(autouse=True)
def _restore_precision_policy():
    """A test that sets the global Keras precision policy (bf16, amp) leaves the next test the
    policy it found, even when it fails."""
    import keras

    policy = keras.mixed_precision.global_policy()
    yield
    keras.mixed_precision.set_global_policy(policy)
