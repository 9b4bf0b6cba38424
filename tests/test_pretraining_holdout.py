"""`nvlm data pretraining --holdout-documents N`: held-out documents become DIR/heldout/, a
shard set of their own, and no sentence of theirs reaches a training instance (issue 18)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import error_line, invoke, json_of, ok

DOCUMENTS = 40
COMMON = "the cat sat on mat a dog ran in park birds sing morning".split()


def marker(doc: int) -> str:
    """The word only document `doc` uses (letters only: one WordPiece token of our vocab)."""
    return "zq" + chr(ord("a") + doc // 26) + chr(ord("a") + doc % 26)


@pytest.fixture(scope="module")
def marked(tmp_path_factory) -> Path:
    """corpus.txt of DOCUMENTS documents whose every sentence holds the document's marker word,
    and a vocab.txt in which each marker is one token: an instance's markers say which
    documents its sentences came from."""
    root = tmp_path_factory.mktemp("marked")
    rng = np.random.default_rng(3)
    lines = []
    for doc in range(DOCUMENTS):
        for _ in range(int(rng.integers(3, 7))):
            words = rng.choice(COMMON, size=int(rng.integers(3, 8))).tolist()
            lines.append(" ".join([marker(doc), *words, "."]))
        lines.append("")
    (root / "corpus.txt").write_text("\n".join(lines))
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens = [*specials, ".", *COMMON, *(marker(d) for d in range(DOCUMENTS))]
    (root / "vocab.txt").write_text("\n".join(tokens) + "\n")
    return root


def prepare(root: Path, out: Path, *args, model: str = "bert"):
    return invoke("data", "pretraining", "--model", model, "--input", root / "corpus.txt",
                  "--vocab", root / "vocab.txt", "--out", out, "--seq-len", 32,
                  "--max-predictions", 5, "--dupe-factor", 2, "--workers", 1, *args)  # fmt: skip


def documents_in(directory: Path, vocab: Path) -> set[int]:
    """Documents whose marker appears in any instance of the shard set, read with the masks
    undone (a masked position may hold a random token, possibly another document's marker)."""
    ids = {t: i for i, t in enumerate(vocab.read_text().splitlines())}
    by_id = {ids[marker(d)]: d for d in range(DOCUMENTS)}
    found: set[int] = set()
    for shard in sorted(directory.glob("shard-*.hdf5")):
        with h5py.File(shard, "r") as f:
            input_ids = f["input_ids"][:]
            if "masked_lm_positions" in f:
                positions, originals = f["masked_lm_positions"][:], f["masked_lm_ids"][:]
                rows = np.repeat(np.arange(len(input_ids)), positions.shape[1])
                real = positions.ravel() > 0  # 0 pads the list ([CLS] is never masked)
                input_ids[rows[real], positions.ravel()[real]] = originals.ravel()[real]
        found |= {by_id[i] for i in np.unique(input_ids).tolist() if i in by_id}
    return found


def split_of(directory: Path) -> dict:
    return json.loads((directory / "manifest.json").read_text())["split"]


@pytest.mark.parametrize("model", ["bert", "electra"])
def test_held_out_documents_reach_no_training_instance_and_back(marked, tmp_path, model):
    out = tmp_path / "shards"
    summary = json_of(prepare(marked, out, "--holdout-documents", 6, "--shards", 2,
                              "--json", model=model))  # fmt: skip
    heldout = set(split_of(out)["heldout_indices"])
    assert len(heldout) == 6
    training = documents_in(out, marked / "vocab.txt")
    held = documents_in(out / "heldout", marked / "vocab.txt")
    # Every document lands on exactly its own side (BERT's random next segments included).
    assert held == heldout
    assert training == set(range(DOCUMENTS)) - heldout
    assert summary["documents"] == DOCUMENTS - 6
    assert summary["heldout"]["documents"] == 6
    assert summary["heldout"]["out"] == str(out / "heldout")


def test_both_manifests_record_the_split(marked, tmp_path):
    out = tmp_path / "shards"
    ok(prepare(marked, out, "--holdout-documents", 0.25, "--seed", 7))
    training, heldout = split_of(out), split_of(out / "heldout")
    assert training.pop("role") == "training"
    assert heldout.pop("role") == "heldout"
    assert training == heldout
    assert training["requested"] == 0.25
    assert training["seed"] == 7
    assert (training["documents"], training["heldout_documents"]) == (DOCUMENTS, 10)
    assert training["training_documents"] == DOCUMENTS - 10
    assert sorted(set(training["heldout_indices"])) == training["heldout_indices"]
    manifest = json.loads((out / "heldout" / "manifest.json").read_text())
    assert manifest["counts"]["documents"] == 10
    assert sorted(p.name for p in (out / "heldout").iterdir()) == [
        "manifest.json",
        "shard-00000.hdf5",
        "vocab.txt",
    ]


def test_same_seed_same_split_other_seed_other_split(marked, tmp_path):
    splits = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        ok(prepare(marked, tmp_path / name, "--holdout-documents", 8, "--seed", seed))
        splits[name] = split_of(tmp_path / name)["heldout_indices"]
    assert splits["a"] == splits["b"]
    assert splits["a"] != splits["c"]
    # Same split, same bytes: the held-out set is as deterministic as the training set.
    digests = [
        json.loads((tmp_path / n / "heldout" / "manifest.json").read_text())["shards"][0]["sha256"]
        for n in ("a", "b")
    ]
    assert digests[0] == digests[1]


@pytest.mark.slow  # a tiny pretraining run: ~15-25 s on a loaded CPU
def test_held_out_set_verifies_and_evaluates(marked, tmp_path):
    out = tmp_path / "shards"
    ok(prepare(marked, out, "--holdout-documents", 0.2))
    report = json_of(invoke("data", "verify", out / "heldout", "--json"))
    assert report["ok"] and report["files"] == 1
    assert json_of(invoke("data", "verify", out, "--json"))["ok"]
    run = tmp_path / "run"
    ok(invoke("pretrain", "--model", "bert", "--data", out, "--out", run, "--steps", 2,
              "--preset", "cpu-fp32", "--set", "model.size=tiny"))  # fmt: skip
    ev = json_of(invoke("eval", "--model", "bert", "--task", "mlm", "--init", run,
                        "--data", out / "heldout", "--json"))  # fmt: skip
    counts = json.loads((out / "heldout" / "manifest.json").read_text())["counts"]
    assert (ev["sequences"], ev["masked_tokens"]) == (counts["instances"], counts["masked_tokens"])


def test_rerun_keeps_both_sets_and_another_split_is_refused(marked, tmp_path):
    out = tmp_path / "shards"
    ok(prepare(marked, out, "--holdout-documents", 5))
    again = json_of(prepare(marked, out, "--holdout-documents", 5, "--json"))
    assert again["shards_built"] == 0
    assert again["heldout"]["shards_built"] == 0
    line = error_line(prepare(marked, out, "--holdout-documents", 6))
    assert line.startswith(
        f"nvlm: error: --out {out} was made with other parameters: holdout_documents=5.0 (now 6.0)"
    )
    line = error_line(prepare(marked, out))
    assert line.startswith(
        f"nvlm: error: --out {out} was made with another held-out split: 5 of 40 documents "
        "held out (--holdout-documents 5 --seed 12345, sha256 "
    )
    assert line.endswith("(now none) (use another --out, or --overwrite to replace it)")
    ok(prepare(marked, out, "--overwrite"))
    assert not (out / "heldout").exists()


def test_a_failure_in_the_held_out_set_leaves_no_manifest_and_a_rerun_finishes(
    marked, tmp_path, monkeypatch
):
    from nvlm.data.pretraining import worker

    real = worker.build_shard

    def failing(index, tokens, cfg, vocab, out_dir, **kwargs):
        if out_dir.name == "heldout":
            raise OSError("simulated I/O error")
        return real(index, tokens, cfg, vocab, out_dir, **kwargs)

    out = tmp_path / "shards"
    monkeypatch.setattr(worker, "build_shard", failing)
    with pytest.raises(OSError, match="simulated"):
        prepare(marked, out, "--holdout-documents", 5)
    # Neither side reads as finished, and nothing half-written is left in the held-out set.
    assert not (out / "manifest.json").exists()
    assert not list(out.rglob("manifest.json"))
    assert not list(out.rglob("*.hdf5")) and not list(out.rglob("*.tmp"))
    monkeypatch.setattr(worker, "build_shard", real)
    ok(prepare(marked, out, "--holdout-documents", 5))
    assert json_of(invoke("data", "verify", out / "heldout", "--json"))["ok"]
    assert json_of(invoke("data", "verify", out, "--json"))["ok"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "--holdout-documents must be a count of 1 or more or a fraction in (0, 1), not 0"),
        ("-3", "--holdout-documents must be a count of 1 or more or a fraction in (0, 1), not -3"),
        ("2.5", "--holdout-documents 2.5 is neither a whole count nor a fraction below 1 "
                "(use e.g. --holdout-documents 100 (documents) or 0.01 (1% of them))"),
        ("40", "--holdout-documents 40 leaves no document for training: the input has 40 "
               "documents (hold out fewer than 40 documents)"),
        ("100", "--holdout-documents 100 leaves no document for training: the input has 40 "
                "documents (hold out fewer than 40 documents)"),
        ("1", "--holdout-documents 1 leaves 1 held-out document(s); BERT needs at least 2 on "
              "each side (random next segments come from another document) (add documents, "
              "or change --holdout-documents)"),
    ],
)  # fmt: skip
def test_refusals_are_one_line_and_write_nothing(marked, tmp_path, value, message):
    out = tmp_path / "shards"
    line = error_line(prepare(marked, out, "--holdout-documents", value))
    assert line == f"nvlm: error: {message}"
    assert not out.exists()


def test_a_fraction_counts_documents_and_too_many_shards_name_the_training_side(marked, tmp_path):
    # 0.01 of 40 documents rounds to 0: at least one is held out, which BERT cannot pair.
    line = error_line(prepare(marked, tmp_path / "a", "--holdout-documents", 0.01))
    assert line.startswith(
        "nvlm: error: --holdout-documents 0.01 (1 of 40 documents) leaves 1 held-out document(s)"
    )
    line = error_line(prepare(marked, tmp_path / "b", "--holdout-documents", 0.5, "--shards", 11))
    assert line.startswith("nvlm: error: training keeps 20 document(s), too few for 11 shard(s)")
