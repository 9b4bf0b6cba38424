"""`nvlm data lm` and `nvlm data verify` on LM directories; training streams (lm_stream)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import error_line, invoke

from nvlm.data.lm.stream import LMStreams
from nvlm.data.lm.vocab import EOS, UNK, LMVocab

TRAIN = "the cat sat on the mat\n\nthe dog sat\nthe end\n"


@pytest.fixture
def texts(tmp_path) -> dict[str, Path]:
    out = {}
    for name, text in {"train": TRAIN, "valid": "the cat ran\n", "test": "a dog sat\n"}.items():
        out[name] = tmp_path / f"{name}.txt"
        out[name].write_text(text)
    return out


def build(texts, out, *extra):
    return invoke(
        "data", "lm", "--train", texts["train"], "--valid", texts["valid"], "--test",
        texts["test"], "--out", out, "--json", *extra,
    )  # fmt: skip


def ids_of(directory: Path, split: str) -> list[int]:
    with h5py.File(directory / f"{split}.hdf5") as f:
        assert f["ids"].dtype == np.int32
        return f["ids"][:].tolist()


def test_vocab_by_frequency_eos_per_line_and_unk(texts, tmp_path):
    result = build(texts, tmp_path / "lm")
    assert result.exit_code == 0, result.output
    vocab = (tmp_path / "lm" / "vocab.txt").read_text().split()
    # <eos> x4 (the empty line has one too) ties with the x4 (alphabetical: "<" < "t"),
    # then sat x2, then the words seen once alphabetically, then the unused <unk>.
    assert vocab == [EOS, "the", "sat", "cat", "dog", "end", "mat", "on", UNK]
    index = {t: i for i, t in enumerate(vocab)}
    assert ids_of(tmp_path / "lm", "valid") == [index["the"], index["cat"], index[UNK], index[EOS]]
    manifest = json.loads((tmp_path / "lm" / "manifest.json").read_text())
    assert manifest["kind"] == "lm" and manifest["vocab"]["size"] == 9
    train = manifest["splits"]["train"]
    assert (train["tokens"], train["lines"], train["words"]) == (15, 4, 11)
    assert manifest["splits"]["valid"]["unk"] == 1
    # Characters of the tokenized text, a word plus one separator each, <eos> one line
    # break: "the cat <unk> " + "\n" (bits per character divide by this).
    assert manifest["splits"]["valid"]["characters"] == len("the cat <unk> \n")
    verified = invoke("data", "verify", tmp_path / "lm", "--json")
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout)["tokens"] == 15 + 4 + 4


def test_min_freq_max_size_and_a_given_vocab(texts, tmp_path):
    assert build(texts, tmp_path / "a", "--min-freq", "2").exit_code == 0
    kept = (tmp_path / "a" / "vocab.txt").read_text().split()
    # cat, dog, end, mat and on (5 tokens) became <unk>, which now ranks first.
    assert kept == [UNK, EOS, "the", "sat"]
    assert build(texts, tmp_path / "b", "--max-size", "3").exit_code == 0
    assert len((tmp_path / "b" / "vocab.txt").read_text().split()) == 3
    result = build(texts, tmp_path / "c", "--vocab", tmp_path / "a" / "vocab.txt")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "c" / "vocab.txt").read_bytes() == (
        tmp_path / "a" / "vocab.txt"
    ).read_bytes()
    assert json.loads(result.stdout)["vocab_source"].endswith("vocab.txt")


def test_verify_names_a_corrupted_stream(texts, tmp_path):
    assert build(texts, tmp_path / "lm").exit_code == 0
    with h5py.File(tmp_path / "lm" / "valid.hdf5", "r+") as f:
        f["ids"][0] = 999
    line = error_line(invoke("data", "verify", tmp_path / "lm"))
    assert "valid.hdf5" in line and "nvlm data lm" in line


def test_bad_inputs_are_one_line_errors(texts, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    line = error_line(invoke("data", "lm", "--train", texts["train"], "--valid", empty,
                             "--out", tmp_path / "x"))  # fmt: skip
    assert "empty split" in line and "--valid" in line
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9\n")
    line = error_line(
        invoke("data", "lm", "--train", tmp_path / "latin1.txt", "--out", tmp_path / "y")
    )
    assert "not UTF-8" in line and "byte 3" in line
    line = error_line(
        invoke("data", "lm", "--train", tmp_path / "nope.txt", "--out", tmp_path / "z")
    )
    assert "does not exist" in line
    (tmp_path / "bad-vocab.txt").write_text("the\ncat\n")
    line = error_line(build(texts, tmp_path / "w", "--vocab", tmp_path / "bad-vocab.txt"))
    assert "<eos>" in line


def test_vocab_helpers():
    vocab = LMVocab.from_counts(Counter({"b": 2, "a": 2, "c": 1, EOS: 3}), max_size=3)
    # b and c are cut: <unk> counts 3 and ties with <eos> ("<e" < "<u").
    assert vocab.tokens == [EOS, UNK, "a"]
    ids = vocab.encode_line("a b") + vocab.encode_line("b")
    assert ids == [2, 1, 0, 1, 0]
    assert vocab.decode(ids) == "a <unk>\n<unk>\n"


def test_streams_split_rows_by_rank_and_resume_by_position():
    ids = np.arange(1000, dtype=np.int32)
    streams = LMStreams(ids, global_batch=8, tgt_len=10)
    assert streams.stream_len == 125 and streams.segments_per_epoch == 12
    one = list(zip(range(6), streams.micro_batches(0, 4, 2, rank=0, world=1), strict=False))
    # One process, accumulation 2: micro-batches are rows 0-3 then 4-7 of segment 0.
    assert one[0][1]["rows"].tolist() == [0, 1, 2, 3] and one[1][1]["rows"].tolist() == [4, 5, 6, 7]
    np.testing.assert_array_equal(one[1][1]["tokens"][0], np.arange(500, 510))
    np.testing.assert_array_equal(one[1][1]["targets"][0], np.arange(501, 511))
    # Rank 1 of 2 (micro 4, no accumulation) reads rows 4-7: what rank 0 read second above.
    rank1 = next(streams.micro_batches(0, 4, 1, rank=1, world=2))
    np.testing.assert_array_equal(rank1["tokens"], one[1][1]["tokens"])
    # Resuming at segment 2 reads what an uninterrupted run reads at its third step.
    resumed = next(streams.micro_batches(2, 4, 2, rank=0, world=1))
    np.testing.assert_array_equal(resumed["tokens"], one[4][1]["tokens"])
    assert int(resumed["segment"]) == 2
    # The epoch wraps: position 12 is segment 0 again.
    wrapped = next(streams.micro_batches(12, 4, 2, rank=0, world=1))
    assert int(wrapped["segment"]) == 0
