"""BERT/ELECTRA instances: layout, masking statistics, NSP, whole words, determinism, resume."""

from __future__ import annotations

import hashlib
import json
import string
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from nvlm.cli.main import app
from nvlm.data.pretraining.config import PretrainingConfig
from nvlm.data.pretraining.prepare import prepare_pretraining
from nvlm.data.pretraining.shard_format import PARTIAL_DIR
from nvlm.data.vocab import Vocab
from nvlm.data.vocab_trainer import train_vocab

runner = CliRunner()


def _run(corpus: Path, vocab: Path, out: Path, *extra: str) -> dict:
    result = runner.invoke(
        app,
        ["data", "pretraining", "--model", "bert", "--input", str(corpus), "--vocab", str(vocab),
         "--out", str(out), "--seq-len", "64", "--json", *extra],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _load(out: Path) -> dict[str, np.ndarray]:
    arrays: dict[str, list] = {}
    for path in sorted(out.glob("shard-*.hdf5")):
        with h5py.File(path) as f:
            for name in f:
                arrays.setdefault(name, []).append(f[name][:])
    return {k: np.concatenate(v) for k, v in arrays.items()}


def _digests(out: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.glob("shard-*.hdf5"))
    }


@pytest.fixture(scope="module")
def bert_dir(demo_corpus, demo_vocab, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bert") / "out"
    _run(demo_corpus, demo_vocab, out, "--shards", "3", "--workers", "1", "--seed", "3")
    return out


def test_layout_cls_a_sep_b_sep_segments_and_padding(bert_dir, demo_vocab):
    vocab = Vocab.load(demo_vocab)
    a = _load(bert_dir)
    ids, mask, seg = a["input_ids"], a["input_mask"], a["segment_ids"]
    assert ids.dtype == np.int32 and mask.dtype == np.int8 and seg.dtype == np.int8
    assert a["masked_lm_positions"].shape[1] == 20 and a["next_sentence_labels"].shape == (
        len(ids),
    )
    n = mask.sum(axis=1)
    for row in range(0, len(ids), 97):
        real = ids[row, : n[row]]
        seps = np.flatnonzero(real == vocab.sep_id)
        assert real[0] == vocab.cls_id and len(seps) == 2 and seps[1] == n[row] - 1
        # Segment 0: [CLS] A [SEP]; segment 1: B [SEP]; padding: [PAD], mask 0, segment 0.
        assert (seg[row, : seps[0] + 1] == 0).all() and (seg[row, seps[0] + 1 : n[row]] == 1).all()
        assert seps[0] >= 2 and seps[1] - seps[0] >= 2  # A and B are non-empty
        assert (mask[row, : n[row]] == 1).all() and (mask[row, n[row] :] == 0).all()
        assert (ids[row, n[row] :] == vocab.pad_id).all() and (seg[row, n[row] :] == 0).all()
    assert n.max() == 64 and n.min() < 40  # full sequences, and short ones (short_seq_prob)


def test_masking_count_positions_and_80_10_10(bert_dir, demo_vocab):
    vocab = Vocab.load(demo_vocab)
    a = _load(bert_dir)
    ids, pos, lm = a["input_ids"], a["masked_lm_positions"], a["masked_lm_ids"]
    n = a["input_mask"].sum(axis=1).astype(np.int64)
    valid = pos != 0
    count = valid.sum(axis=1)
    # The recipe's count, exactly: min(max_predictions, max(1, round(15% of the real length))).
    assert (count == np.minimum(20, np.maximum(1, np.rint(n * 0.15)))).all()
    assert 0.13 < (count / n).mean() < 0.17
    rows = np.broadcast_to(np.arange(len(ids))[:, None], pos.shape)
    at = ids[rows[valid], pos[valid]]
    original = lm[valid]
    specials = [vocab.pad_id, vocab.cls_id, vocab.sep_id, vocab.mask_id]
    assert not np.isin(original, specials).any()  # never [CLS]/[SEP]/[PAD]
    assert (pos[valid] < np.repeat(n, count)).all()
    share_mask = (at == vocab.mask_id).mean()
    share_same = (at == original).mean()
    share_random = 1 - share_mask - share_same
    assert len(at) > 40_000  # tolerance 0.01 below is > 7 standard deviations
    assert (
        abs(share_mask - 0.8) < 0.01
        and abs(share_same - 0.1) < 0.01
        and abs(share_random - 0.1) < 0.01
    )
    # Unmasked tokens are untouched: no [MASK] outside masked positions.
    hit = np.zeros(ids.shape, dtype=bool)
    hit[rows[valid], pos[valid]] = True
    assert not (ids[~hit] == vocab.mask_id).any()


def test_nsp_labels_balanced(bert_dir):
    labels = _load(bert_dir)["next_sentence_labels"]
    assert set(np.unique(labels)) == {0, 1}
    # Random B half the time, plus always when a chunk holds one sentence.
    assert 0.45 < labels.mean() < 0.62


def _word(i: int, prefix: str) -> str:
    letters = string.ascii_lowercase
    return prefix + letters[i // 26 % 26] + letters[i % 26]


@pytest.fixture(scope="module")
def marked(tmp_path_factory):
    """A corpus where every sentence names its document and position: docXY sentXY ..."""
    root = tmp_path_factory.mktemp("marked")
    docs = []
    for d in range(60):
        docs.append(
            "\n".join(
                f"{_word(d, 'doc')} {_word(k, 'sent')} the cat sat on a mat ." for k in range(6)
            )
        )
    (root / "corpus.txt").write_text("\n\n".join(docs) + "\n")
    train_vocab([root / "corpus.txt"], 400, root / "vocab.txt", min_frequency=1)
    out = root / "out"
    cfg = PretrainingConfig.create("bert", seq_len=48, shards=2, seed=5, short_seq_prob=0.0)
    prepare_pretraining(cfg, [root / "corpus.txt"], root / "vocab.txt", out)
    return Vocab.load(root / "vocab.txt"), _load(out)


def test_is_next_pairs_follow_and_random_pairs_come_from_another_document(marked):
    vocab, a = marked
    tokens = np.array(vocab.tokens)
    for row in range(len(a["input_ids"])):
        ids, seg = a["input_ids"][row], a["segment_ids"][row]
        # Undo masking so markers are readable.
        for p, t in zip(a["masked_lm_positions"][row], a["masked_lm_ids"][row], strict=True):
            if p:
                ids = ids.copy()
                ids[p] = t
        text_a = " ".join(tokens[ids[seg == 0]]).split()
        text_b = " ".join(tokens[ids[(seg == 1)]]).split()
        docs_a = {w for w in text_a if w.startswith("doc")}
        docs_b = {w for w in text_b if w.startswith("doc")}
        sents_a = [w for w in text_a if w.startswith("sent")]
        sents_b = [w for w in text_b if w.startswith("sent")]
        if a["next_sentence_labels"][row] == 0:
            assert len(docs_a | docs_b) <= 1, (text_a, text_b)
            if sents_a and sents_b:
                assert max(sents_a) < min(sents_b)
        elif docs_a and docs_b:
            assert docs_a.isdisjoint(docs_b), (text_a, text_b)


def test_whole_word_masking_masks_every_piece_of_a_word(demo_corpus, tmp_path):
    # A tiny vocab splits most words into several pieces.
    train_vocab([demo_corpus], 120, tmp_path / "vocab.txt")
    vocab = Vocab.load(tmp_path / "vocab.txt")
    cont = vocab.continuation_table()
    cfg = PretrainingConfig.create(
        "bert", seq_len=64, shards=1, whole_word_masking=True, dupe_factor=1
    )
    prepare_pretraining(cfg, [demo_corpus], tmp_path / "vocab.txt", tmp_path / "out")
    a = _load(tmp_path / "out")
    multi_piece_words = 0
    for row in range(len(a["input_ids"])):
        ids, seg, n = a["input_ids"][row].copy(), a["segment_ids"][row], a["input_mask"][row].sum()
        masked = {int(p) for p in a["masked_lm_positions"][row] if p}
        for p, t in zip(a["masked_lm_positions"][row], a["masked_lm_ids"][row], strict=True):
            if p:
                ids[p] = t
        content = np.ones(n, dtype=bool)
        content[0] = False
        content[ids[:n] == vocab.sep_id] = False
        for p in masked:
            if p + 1 < n and content[p + 1] and cont[ids[p + 1]]:
                assert p + 1 in masked  # the rest of the word is masked too
                multi_piece_words += 1
            if cont[ids[p]] and content[p - 1] and seg[p - 1] == seg[p]:
                assert p - 1 in masked  # and so is its beginning
    assert multi_piece_words > 100


def test_same_seed_same_bytes_other_seed_other_bytes_workers_irrelevant(
    demo_corpus, demo_vocab, tmp_path
):
    one = _run(
        demo_corpus,
        demo_vocab,
        tmp_path / "w1",
        "--shards",
        "2",
        "--workers",
        "1",
        "--dupe-factor",
        "1",
    )
    two = _run(
        demo_corpus,
        demo_vocab,
        tmp_path / "w2",
        "--shards",
        "2",
        "--workers",
        "2",
        "--dupe-factor",
        "1",
    )
    assert one["workers"] == 1 and two["workers"] == 2
    assert _digests(tmp_path / "w1") == _digests(tmp_path / "w2")
    other = _run(
        demo_corpus,
        demo_vocab,
        tmp_path / "s2",
        "--shards",
        "2",
        "--workers",
        "1",
        "--dupe-factor",
        "1",
        "--seed",
        "99",
    )
    assert other["instances"] > 0
    assert set(_digests(tmp_path / "s2").values()).isdisjoint(_digests(tmp_path / "w1").values())
    manifest = json.loads((tmp_path / "w2" / "manifest.json").read_text())
    assert [s["sha256"] for s in manifest["shards"]] == list(_digests(tmp_path / "w2").values())
    assert (tmp_path / "w2" / "vocab.txt").read_bytes() == demo_vocab.read_bytes()


def test_resume_rebuilds_only_the_missing_shard_identically(demo_corpus, demo_vocab, tmp_path):
    out = tmp_path / "out"
    _run(demo_corpus, demo_vocab, out, "--shards", "3", "--workers", "1", "--dupe-factor", "1")
    before = _digests(out)
    (out / "shard-00001.hdf5").unlink()
    again = _run(
        demo_corpus, demo_vocab, out, "--shards", "3", "--workers", "1", "--dupe-factor", "1"
    )
    assert (again["shards_built"], again["shards_kept"]) == (1, 2)
    assert _digests(out) == before
    nothing = _run(
        demo_corpus, demo_vocab, out, "--shards", "3", "--workers", "1", "--dupe-factor", "1"
    )
    assert nothing["shards_built"] == 0


def test_interrupted_run_leaves_no_partial_shard_and_resumes(
    demo_corpus, demo_vocab, tmp_path, monkeypatch
):
    import nvlm.data.pretraining.worker as worker

    real = worker.build_shard
    calls = []

    def failing(index, *args, **kwargs):
        calls.append(index)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        return real(index, *args, **kwargs)

    monkeypatch.setattr(worker, "build_shard", failing)
    cfg = PretrainingConfig.create("bert", seq_len=64, shards=3, dupe_factor=1)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="disk on fire"):
        prepare_pretraining(cfg, [demo_corpus], demo_vocab, out)
    names = sorted(p.name for p in out.iterdir())
    assert names == [PARTIAL_DIR, "shard-00000.hdf5"]  # no .tmp, no manifest
    assert sorted(p.name for p in (out / PARTIAL_DIR).iterdir()) == [
        "params.json",
        "shard-00000.hdf5.json",
    ]
    monkeypatch.setattr(worker, "build_shard", real)
    summary = prepare_pretraining(cfg, [demo_corpus], demo_vocab, out)
    assert (summary["shards_built"], summary["shards_kept"]) == (2, 1)
    clean = prepare_pretraining(cfg, [demo_corpus], demo_vocab, tmp_path / "clean")
    assert clean["instances"] == summary["instances"]
    assert _digests(out) == _digests(tmp_path / "clean")
    assert not (out / PARTIAL_DIR).exists()


def test_electra_packs_documents_unmasked(demo_corpus, demo_vocab, tmp_path):
    result = runner.invoke(
        app,
        ["data", "pretraining", "--model", "electra", "--input", str(demo_corpus), "--vocab", str(demo_vocab),
         "--out", str(tmp_path / "e"), "--seq-len", "64", "--shards", "2", "--workers", "1", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    vocab = Vocab.load(demo_vocab)
    a = _load(tmp_path / "e")
    assert set(a) == {"input_ids", "input_mask", "segment_ids"}
    ids, seg, n = a["input_ids"], a["segment_ids"], a["input_mask"].sum(axis=1)
    assert not (ids == vocab.mask_id).any()
    assert (ids[:, 0] == vocab.cls_id).all() and (
        ids[np.arange(len(ids)), n - 1] == vocab.sep_id
    ).all()
    two_segments = (seg == 1).any(axis=1)
    assert 0.5 < two_segments.mean() < 1.0  # mostly pairs, sometimes one segment
    # Packed: most sequences are (nearly) full.
    assert np.median(n) >= 56
    summary = json.loads(result.stdout)
    assert (
        summary["masked_tokens"] == 0
        and summary["tokens"]
        == json.loads((tmp_path / "e" / "manifest.json").read_text())["counts"]["tokens"]
    )


def test_split_sentences_and_directory_inputs(demo_vocab, tmp_path):
    corpus = tmp_path / "raw"
    corpus.mkdir()
    paragraph = (
        "Mr. Brim lives in Kelholm. He bakes bread every day. The bread is sold at the market."
    )
    for name in ("a.txt", "b.txt"):
        (corpus / name).write_text("\n\n".join([paragraph] * 3) + "\n")
    (corpus / ".hidden.txt").write_bytes(b"\xff not text")  # hidden files are skipped
    summary = _run(
        corpus,
        demo_vocab,
        tmp_path / "out",
        "--split-sentences",
        "--shards",
        "1",
        "--dupe-factor",
        "1",
    )
    # 2 files x 3 paragraphs (= documents) x 3 sentences; "Mr." does not end a sentence.
    assert (summary["documents"], summary["sentences"]) == (6, 18)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [Path(i["path"]).name for i in manifest["inputs"]] == ["a.txt", "b.txt"]
    assert manifest["parameters"]["split_sentences"] is True
