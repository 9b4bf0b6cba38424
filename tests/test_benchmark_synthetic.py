"""Synthetic data for `nvlm benchmark` (nvlm.bench.synthetic): the real readers accept it, its
statistics are the ones its docstrings state, and a tiny model trains on it end to end."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import invoke

from nvlm import registry
from nvlm.bench.synthetic import (
    lm_corpus,
    lm_ids,
    pretraining_shards,
    squad_arrays,
    word_shares,
)
from nvlm.bench.synthetic_classify import classify_features
from nvlm.data.checksum import sha256_file
from nvlm.data.lm.corpus import read_lm_directory
from nvlm.data.pretraining.shards import read_shards
from nvlm.data.verify import verify_directory
from nvlm.errors import UserError

PAD, UNK, CLS, SEP, MASK = 0, 100, 101, 102, 103  # Google's BERT vocab layout
FIRST_PIECE = 104


def arrays(directory: Path) -> dict[str, np.ndarray]:
    with h5py.File(directory / "shard-00000.hdf5", "r") as f:
        return {name: f[name][:] for name in f}


@pytest.fixture(scope="module")
def bert512(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synthetic") / "bert512"
    return pretraining_shards(out, model="bert", vocab_size=30522, seq_len=512,
                              max_predictions=80, examples=4000, seed=3)  # fmt: skip


# --- pretraining shards ---------------------------------------------------------------------


def test_bert_shards_pass_the_readers_and_nvlm_data_verify(bert512):
    info = read_shards(bert512, expect_kind="bert")
    info.check(full=True)
    assert (info.examples, info.seq_len, info.max_predictions) == (4000, 512, 80)
    assert info.vocab_size == 30522
    assert verify_directory(bert512)["ok"]
    manifest = json.loads((bert512 / "manifest.json").read_text())
    assert manifest["synthetic"] is True
    assert manifest["generator"]["examples"] == 4000 and manifest["generator"]["seed"] == 3
    lines = (bert512 / "vocab.txt").read_text().splitlines()
    assert len(lines) == 30522
    assert [lines[i] for i in (PAD, UNK, CLS, SEP, MASK)] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]",
                                                              "[MASK]"]  # fmt: skip


def test_bert_rows_are_cls_a_sep_b_sep_then_padding(bert512):
    a = arrays(bert512)
    ids, mask, seg = a["input_ids"], a["input_mask"].astype(int), a["segment_ids"].astype(int)
    n = mask.sum(1)
    pos = np.arange(512)[None, :]
    assert (mask[:, 1:] <= mask[:, :-1]).all()  # ones, then zeros
    assert (ids[:, 0] == CLS).all() and (ids[np.arange(len(ids)), n - 1] == SEP).all()
    assert (ids[pos >= n[:, None]] == PAD).all() and (seg[pos >= n[:, None]] == 0).all()
    assert ((ids == SEP).sum(1) == 2).all()
    first_sep = np.argmax(ids == SEP, axis=1)
    # Segment 0 up to and including the first [SEP], 1 for B and its [SEP].
    assert (seg == ((pos > first_sep[:, None]) & (pos < n[:, None]))).all()


def test_bert_masking_follows_the_recipe(bert512):
    a = arrays(bert512)
    positions, labels, ids = a["masked_lm_positions"], a["masked_lm_ids"], a["input_ids"]
    n_real = a["input_mask"].astype(int).sum(1)
    count = (positions > 0).sum(1)
    # min(max_predictions, max(1, round(0.15 * tokens))), [CLS]/[SEP] counted as Google does.
    assert (count == np.minimum(80, np.maximum(1, np.rint(0.15 * n_real)))).all()
    for row in range(len(positions)):
        p = positions[row, : count[row]]
        assert (np.diff(p) > 0).all() and (positions[row, count[row] :] == 0).all()
        assert (labels[row, count[row] :] == 0).all()
    chosen = positions > 0
    picked = np.take_along_axis(ids, positions, axis=1)[chosen]
    original = labels[chosen]
    assert (original >= FIRST_PIECE).all()  # never a special token
    assert 0.77 < np.mean(picked == MASK) < 0.83
    assert 0.08 < np.mean(picked == original) < 0.12


def test_bert_lengths_and_next_sentence_labels_match_real_wikipedia_data(bert512, tmp_path):
    n = arrays(bert512)["input_mask"].astype(int).sum(1)
    # Graphcore's histogram of the Wikipedia BERT data at seq 512: 23.4% full rows, 50% padding.
    assert 0.20 < np.mean(n == 512) < 0.29
    assert 0.45 < 1 - n.mean() / 512 < 0.55
    # B is random half the time, and always for a chunk of one sentence.
    assert 0.50 < arrays(bert512)["next_sentence_labels"].mean() < 0.65
    short = pretraining_shards(tmp_path / "b128", model="bert", vocab_size=1000, seq_len=128,
                               max_predictions=20, examples=2000)  # fmt: skip
    n = arrays(short)["input_mask"].astype(int).sum(1)
    assert 0.5 < np.mean(n == 128) < 0.7  # the same documents fill most 128-token rows


def test_electra_shards_hold_unmasked_inputs_and_the_plugin_reads_their_ids(tmp_path):
    data = pretraining_shards(tmp_path / "electra", model="electra", vocab_size=30522,
                              seq_len=128, max_predictions=None, examples=500)  # fmt: skip
    info = read_shards(data, expect_kind="electra")
    info.check(full=True)
    assert sorted(arrays(data)) == ["input_ids", "input_mask", "segment_ids"]
    assert not (arrays(data)["input_ids"] == MASK).any()
    assert verify_directory(data)["ok"]
    _, values = registry.get("electra").data_overrides(data)
    assert (values["model.mask_token_id"], values["model.cls_token_id"],
            values["model.sep_token_id"]) == (MASK, CLS, SEP)  # fmt: skip


def test_the_same_seed_gives_the_same_bytes(tmp_path):
    def shard(name: str, seed: int) -> str:
        out = pretraining_shards(tmp_path / name, model="bert", vocab_size=500, seq_len=64,
                                 max_predictions=10, examples=300, seed=seed)  # fmt: skip
        return sha256_file(out / "shard-00000.hdf5")

    assert shard("a", 1) == shard("b", 1) != shard("c", 2)
    lm = [lm_corpus(tmp_path / f"lm{i}", vocab_size=300, tokens=5000, seed=s)
          for i, s in enumerate((1, 1, 2))]  # fmt: skip
    digests = [sha256_file(d / "train.hdf5") for d in lm]
    assert digests[0] == digests[1] != digests[2]
    assert np.array_equal(
        squad_arrays(examples=50, seq_len=128, vocab_size=500, seed=4)["input_ids"],
        squad_arrays(examples=50, seq_len=128, vocab_size=500, seed=4)["input_ids"],
    )


def test_a_non_empty_directory_is_refused_and_left_alone(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    for make in (
        lambda: pretraining_shards(tmp_path, model="bert", vocab_size=500, seq_len=64,
                                   max_predictions=10, examples=10),
        lambda: lm_corpus(tmp_path, vocab_size=100, tokens=100),
    ):  # fmt: skip
        with pytest.raises(UserError, match="is not empty") as caught:
            make()
        assert caught.value.exit_code == 2
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_an_error_midway_leaves_nothing_behind(tmp_path, monkeypatch):
    import nvlm.bench.synthetic as synthetic

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(synthetic, "apply_masking", broken)
    empty = tmp_path / "empty"
    empty.mkdir()
    for out in (tmp_path / "new", empty):
        with pytest.raises(RuntimeError, match="disk on fire"):
            pretraining_shards(out, model="bert", vocab_size=500, seq_len=64,
                               max_predictions=10, examples=10)  # fmt: skip
    assert not (tmp_path / "new").exists()
    assert list(empty.iterdir()) == []  # an empty directory given is kept, and left empty


def test_bad_parameters_are_one_line_errors_and_create_nothing(tmp_path):
    out = tmp_path / "data"
    cases = [
        (dict(model="gpt", vocab_size=500, seq_len=64, max_predictions=10), "--model"),
        (dict(model="bert", vocab_size=100, seq_len=64, max_predictions=10), "too small"),
        (dict(model="bert", vocab_size=500, seq_len=64, max_predictions=62), "max-predictions"),
    ]
    for kwargs, words in cases:
        with pytest.raises(UserError, match=words):
            pretraining_shards(out, examples=10, **kwargs)
        assert not out.exists()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    with pytest.raises(UserError, match="is a file"):
        lm_corpus(a_file, vocab_size=100, tokens=100)
    assert a_file.read_text() == "mine"
    with pytest.raises(UserError, match="too small"):
        squad_arrays(examples=10, seq_len=128, vocab_size=50)


# --- language-modelling corpus --------------------------------------------------------------


def test_lm_corpus_passes_the_readers_and_nvlm_data_verify(tmp_path):
    data = lm_corpus(tmp_path / "lm", vocab_size=2000, tokens=30_000)
    lm = read_lm_directory(data)
    lm.check(full=True)
    ids = lm.load("train")
    assert len(ids) == 30_000 and ids[-1] == lm.vocab().eos_id
    assert len(lm.load("valid")) == len(lm.load("test")) == 30_000  # capped at `tokens`
    assert verify_directory(data)["ok"]
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["synthetic"] is True and manifest["generator"]["tokens"] == 30_000
    _, values = registry.get("transformer-xl").data_overrides(data)
    assert values == {"model.vocab_size": 2000}
    # The in-memory stream (for inference benchmarks) is the train split.
    assert np.array_equal(lm_ids(tokens=30_000, vocab_size=2000, seed=0), ids)


def test_lm_ids_follow_the_stated_wikitext103_law(tmp_path):
    vocab = 267_735
    data = lm_corpus(tmp_path / "wt103", vocab_size=vocab, tokens=2_000_000)
    lm = read_lm_directory(data)
    ids = lm.load("train")
    shares = np.histogram(ids, bins=[0, 19_997, 39_997, 199_997, vocab])[0] / len(ids)
    # The docstring's figures for Transformer-XL base's clusters: 94.5 / 2.5 / 2.8 / 0.26 %.
    assert 0.940 < shares[0] < 0.950
    assert 0.022 < shares[1] < 0.028 and 0.025 < shares[2] < 0.031
    assert 0.0020 < shares[3] < 0.0032
    expected = word_shares(vocab)
    assert np.all(np.diff(expected) <= 0)  # id 0 is the most frequent, as in a real vocab
    counts = np.bincount(ids, minlength=vocab)
    assert counts[0] > counts[10] > counts[1000] > counts[100_000]
    vocab_ = lm.vocab()
    assert 1 / 65 < np.mean(ids == vocab_.eos_id) < 1 / 50  # WikiText-103: 1 per 57 tokens
    assert 0.0035 < np.mean(ids == vocab_.unk_id) < 0.0045  # 0.4% <unk>


# --- SQuAD features -------------------------------------------------------------------------


def test_squad_arrays_look_like_squad_features():
    a = squad_arrays(examples=3000, seq_len=384, vocab_size=30522, seed=1)
    assert sorted(a) == sorted(["input_ids", "input_mask", "segment_ids", "start_positions",
                                "end_positions", "is_impossible"])  # fmt: skip
    assert all(v.dtype == np.int32 for v in a.values())
    ids, mask, seg = a["input_ids"], a["input_mask"], a["segment_ids"]
    assert ids.shape == mask.shape == seg.shape == (3000, 384)
    rows = np.arange(3000)
    n = mask.sum(1)
    query_sep = np.argmax(ids == SEP, axis=1)
    assert (ids[:, 0] == CLS).all() and (ids[rows, n - 1] == SEP).all()
    assert (query_sep - 1 <= 64).all()  # questions within max_query_len
    pos = np.arange(384)[None, :]
    assert (seg == ((pos > query_sep[:, None]) & (pos < n[:, None]))).all()
    start, end = a["start_positions"], a["end_positions"]
    # Spans inside the context: after the question's [SEP], before the final one, in the mask.
    assert (start > query_sep).all() and (end >= start).all() and (end < n - 1).all()
    assert (end - start < 30).all() and 2.5 < (end - start + 1).mean() < 4.5
    assert not a["is_impossible"].any()
    # SQuAD v1.1 at seq 384 (Graphcore's histogram): median 159 pieces, ~1% full windows.
    assert 145 < np.median(n) < 175 and np.mean(n == 384) < 0.03


def test_squad_v2_has_a_third_unanswerable_and_inputs_only_without_targets():
    a = squad_arrays(examples=3000, seq_len=128, vocab_size=1000, version_2=True, seed=2)
    impossible = a["is_impossible"].astype(bool)
    assert 0.30 < impossible.mean() < 0.37
    assert (a["start_positions"][impossible] == 0).all()
    assert (a["end_positions"][impossible] == 0).all()
    assert (a["input_ids"] < 1000).all()
    assert np.mean(a["input_mask"].sum(1) == 128) > 0.5  # long contexts fill a short window
    plain = squad_arrays(examples=10, seq_len=128, vocab_size=1000, targets=False)
    assert sorted(plain) == ["input_ids", "input_mask", "segment_ids"]


# --- classification text pairs ---------------------------------------------------------------


def test_classify_features_are_cls_a_sep_b_sep_pairs_with_balanced_labels():
    f = classify_features(examples=2000, seq_len=128, vocab_size=30522, num_labels=3, seed=4)
    ids, mask, seg = f.input_ids, f.input_mask, f.segment_ids
    assert ids.shape == mask.shape == seg.shape == (2000, 128) and ids.dtype == np.int32
    rows, n = np.arange(2000), mask.sum(1)
    first_sep = np.argmax(ids == SEP, axis=1)
    assert (ids[:, 0] == CLS).all() and (ids[rows, n - 1] == SEP).all()
    assert ((ids == SEP).sum(1) == 2).all() and (ids[mask == 0] == PAD).all()
    pos = np.arange(128)[None, :]
    # Segment 1 is `b [SEP]`, as the classify task's `encode` lays a pair out.
    assert (seg == ((pos > first_sep[:, None]) & (pos < n[:, None]))).all()
    assert (first_sep > 1).all() and (n - first_sep > 2).all()  # neither text is empty
    assert f.targets is None and set(np.unique(f.label_ids)) == {0, 1, 2}
    assert np.bincount(f.label_ids).min() > 600
    # The stated lengths: a median of 39 real tokens at seq 128, under 1% truncated.
    assert 35 <= np.median(n) <= 43 and f.truncated < 20


def test_classify_features_cut_long_pairs_longest_first_and_regress_on_0_to_5():
    f = classify_features(examples=300, seq_len=16, vocab_size=1000, num_labels=1, seed=5)
    assert f.label_ids is None and f.targets.dtype == np.float32
    assert (0 <= f.targets).all() and (f.targets <= 5).all()
    assert f.truncated > 150 and (f.input_ids < 1000).all()
    full = f.input_mask.sum(1) == 16
    assert full.sum() >= f.truncated  # a cut pair fills the window exactly
    first = np.argmax(f.input_ids == SEP, axis=1) - 1  # pieces of the first text
    assert (first >= 1).all() and (f.input_mask.sum(1) - first - 3 >= 1).all()


def test_classify_features_refuse_a_window_with_no_room_for_a_pair():
    with pytest.raises(UserError, match="sequence length must be at least 5 for a pair, not 4"):
        classify_features(examples=1, seq_len=4, vocab_size=1000)


# --- end to end -----------------------------------------------------------------------------


def test_tiny_bert_pretrains_on_synthetic_shards(tmp_path):
    data = pretraining_shards(tmp_path / "data", model="bert", vocab_size=512, seq_len=32,
                              max_predictions=5, examples=64)  # fmt: skip
    run = tmp_path / "run"
    r = invoke("pretrain", "--model", "bert", "--data", data, "--out", run,
               "--set", "model.size=tiny", "--steps", 2, "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout[r.stdout.index("{") :])
    assert summary["steps"] == 2 and np.isfinite(summary["final"]["loss"])
    assert (run / "checkpoints" / "checkpoint").is_file()


def test_tiny_transformer_xl_trains_on_a_synthetic_corpus(tmp_path):
    data = lm_corpus(tmp_path / "data", vocab_size=1000, tokens=20_000)
    run = tmp_path / "run"
    r = invoke("pretrain", "--model", "transformer-xl", "--data", data, "--out", run,
               "--set", "model.size=tiny", "--set", "data.seq_len=16", "--set", "model.mem_len=16",
               "--set", "train.batch_size=4", "--steps", 2, "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout[r.stdout.index("{") :])
    assert summary["steps"] == 2 and np.isfinite(summary["final"]["loss"])
    assert (run / "checkpoints" / "checkpoint").is_file()
