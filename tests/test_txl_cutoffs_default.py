"""Transformer-XL's default adaptive-softmax cutoffs follow the vocabulary of the data: the
WikiText-103 recipe's cutoffs that fit are kept, a small vocabulary gets a plain softmax, and
cutoffs the user sets are kept as they are or refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helpers import error_line, invoke, ok

from nvlm.models.transformer_xl.config import TransformerXLConfig, fit_cutoffs

# A small model under size "custom": no size sets cutoffs, so the recipe default applies (the
# tiny size fixes a plain softmax, which would hide the derivation).
SMALL = [
    "--preset", "cpu-fp32", "--set", "model.size=custom", "--set", "model.n_layer=1",
    "--set", "model.d_model=32", "--set", "model.n_head=2", "--set", "model.d_head=16",
    "--set", "model.d_inner=64", "--set", "data.seq_len=16", "--set", "model.mem_len=16",
    "--set", "train.batch_size=4", "--set", "train.accumulation=1",
    "--set", "train.warmup_steps=1", "--steps", "2",
]  # fmt: skip
WORDS = 21_500  # distinct words: with <unk> and <eos>, 21,502 ids, so that the first cutoff fits


@pytest.mark.parametrize(("vocab", "expected"), [
    (267_735, (19997, 39997, 199997)),  # WikiText-103: the recipe as it is
    (200_997, (19997, 39997, 199997)),  # 1,000 words after the last cutoff: kept
    (200_996, (19997, 39997)),          # 999: too few for a cluster of their own
    (40_997, (19997, 39997)),
    (33_278, (19997,)),                 # WikiText-2
    (20_997, (19997,)),
    (20_996, ()),                       # below 19,997 + 1,000 words: a plain softmax
    (14_143, ()),
    (100, ()),
])  # fmt: skip
def test_the_recipe_cutoffs_that_fit_a_vocabulary(vocab, expected):
    assert fit_cutoffs(vocab) == expected
    assert TransformerXLConfig(vocab_size=vocab).cutoffs == expected


def test_cutoffs_that_are_set_are_not_adjusted():
    assert TransformerXLConfig(vocab_size=300, cutoffs=(100,)).cutoffs == (100,)
    assert TransformerXLConfig(vocab_size=300, cutoffs=()).cutoffs == ()


@pytest.fixture(scope="module")
def wide_corpus(tmp_path_factory) -> Path:
    """An `nvlm data lm` directory of 21,500 distinct words (each seen twice)."""
    root = tmp_path_factory.mktemp("wide-corpus")
    words = [f"w{i:05d}" for i in range(WORDS)] * 2
    lines = [" ".join(words[i : i + 20]) for i in range(0, len(words), 20)]
    (root / "train.txt").write_text("\n".join(lines) + "\n")
    ok(invoke("data", "lm", "--train", root / "train.txt", "--out", root / "lm"))
    return root / "lm"


def pretrain(data: Path, out: Path, *extra):
    return invoke("pretrain", "--model", "transformer-xl", "--data", data, "--out", out,
                  *SMALL, *extra)  # fmt: skip


def cutoffs_of(run: Path) -> list[int]:
    return yaml.safe_load((run / "config.yaml").read_text())["model"]["cutoffs"]


def flat(text: str) -> str:
    return " ".join(text.split())  # the console wraps long notes


def test_a_corpus_under_200k_words_trains_with_the_cutoffs_that_fit(wide_corpus, tmp_path):
    result = ok(pretrain(wide_corpus, tmp_path / "run"))
    assert (
        "note: model.cutoffs=[19997] derived from model.vocab_size=21502 "
        "(not [19997, 39997, 199997]; set model.cutoffs to choose)"
    ) in flat(result.stderr)
    assert cutoffs_of(tmp_path / "run") == [19997]
    assert (tmp_path / "run" / "checkpoints").is_dir()


def test_a_few_thousand_words_train_with_a_plain_softmax(txl_corpus, tmp_path):
    result = ok(pretrain(txl_corpus, tmp_path / "run"))
    vocab = len((txl_corpus / "vocab.txt").read_text().splitlines())
    assert (
        f"note: model.cutoffs=[] derived from model.vocab_size={vocab} "
        "(not [19997, 39997, 199997]; set model.cutoffs to choose)"
    ) in flat(result.stderr)
    assert cutoffs_of(tmp_path / "run") == []


def test_cutoffs_the_user_sets_are_kept_without_a_note(wide_corpus, tmp_path):
    result = ok(pretrain(wide_corpus, tmp_path / "run", "--set", "model.cutoffs=[5000]"))
    assert "model.cutoffs" not in result.stderr
    assert cutoffs_of(tmp_path / "run") == [5000]


def test_a_cutoff_beyond_the_vocabulary_is_still_refused(wide_corpus, tmp_path):
    line = error_line(pretrain(wide_corpus, tmp_path / "run", "--set", "model.cutoffs=[30000]"))
    assert line == (
        "nvlm: error: model.cutoffs=[30000] reach beyond the vocabulary of 21,502 words "
        "(every cutoff must be < 21502: e.g. --set 'model.cutoffs=[10751]', or --set "
        "'model.cutoffs=[]' for a plain softmax)"
    )
    assert not (tmp_path / "run").exists()
