"""`nvlm data demo-corpus --classify`: the labelled set of `make demo TASK=classify`."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from helpers import error_line, invoke, json_of

from nvlm.data.demo_classify import _CUES, LABELS, demo_classify
from nvlm.errors import UserError
from nvlm.tasks.classify.reader import read_classify


def demo_corpus(out, *args) -> dict:
    return json_of(invoke("data", "demo-corpus", "--out", out, "--documents", 50, *args, "--json"))


def rows(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_classify_writes_train_and_dev_jsonl_the_classifier_reads(tmp_path):
    summary = demo_corpus(tmp_path, "--classify")
    assert summary["classify_train"] == str(tmp_path / "classify-train.jsonl")
    assert summary["classify_dev"] == str(tmp_path / "classify-dev.jsonl")
    assert (summary["classify_train_examples"], summary["classify_dev_examples"]) == (1600, 400)
    train = rows(tmp_path / "classify-train.jsonl")
    assert len(train) == 1600 and all(set(r) == {"id", "text", "label"} for r in train)
    assert len({r["id"] for r in train}) == 1600
    # The files are what `nvlm finetune --task classify` takes: two labels, dev within them.
    dataset = read_classify(tmp_path / "classify-train.jsonl")
    assert set(dataset.label_set.names) == set(LABELS) and dataset.pairs is None
    dev = read_classify(tmp_path / "classify-dev.jsonl", labels=dataset.label_set)
    assert len(dev) == 400


def test_labels_are_balanced_exactly_in_train_and_dev(tmp_path):
    demo_corpus(tmp_path, "--classify")
    for name, size in (("classify-train.jsonl", 1600), ("classify-dev.jsonl", 400)):
        counts = Counter(r["label"] for r in rows(tmp_path / name))
        assert counts == {"positive": size // 2, "negative": size // 2}, name
    assert Counter(r["label"] for r in demo_classify(7, seed=3)) in (
        {"positive": 4, "negative": 3},
        {"positive": 3, "negative": 4},
    )


def test_the_label_is_carried_by_two_cue_words_of_its_class_and_none_of_the_other():
    for row in demo_classify(400, seed=5):
        words = row["text"].replace(".", " ").replace(",", " ").split()
        other = "negative" if row["label"] == "positive" else "positive"
        assert sum(w in _CUES[row["label"]] for w in words) == 2, row
        assert not set(words) & set(_CUES[other]), row
        assert row["text"].endswith(" day."), row  # the verdict closes the text


def test_same_seed_same_bytes_other_seed_other_text_and_dev_is_about_other_texts(tmp_path):
    for name in ("a", "b"):
        demo_corpus(tmp_path / name, "--classify", "--seed", 4)
    for name in ("classify-train.jsonl", "classify-dev.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert demo_classify(20, seed=1) != demo_classify(20, seed=2)
    train = {r["text"] for r in rows(tmp_path / "a" / "classify-train.jsonl")}
    dev = {r["text"] for r in rows(tmp_path / "a" / "classify-dev.jsonl")}
    assert not train & dev
    # The corpus does not depend on whether the labelled set is asked for.
    demo_corpus(tmp_path / "plain", "--seed", 4)
    plain = tmp_path / "plain" / "corpus.txt"
    assert plain.read_bytes() == (tmp_path / "a" / "corpus.txt").read_bytes()
    assert not (tmp_path / "plain" / "classify-train.jsonl").exists()


def test_an_existing_labelled_file_is_refused_before_anything_is_written(tmp_path):
    (tmp_path / "classify-dev.jsonl").write_text("mine\n")
    line = error_line(invoke("data", "demo-corpus", "--out", tmp_path, "--classify"))
    assert line == (
        f"nvlm: error: --out {tmp_path / 'classify-dev.jsonl'} exists and nvlm does not "
        "overwrite files unless told (add --overwrite, or choose another path)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classify-dev.jsonl"]
    demo_corpus(tmp_path, "--classify", "--overwrite")
    assert len(rows(tmp_path / "classify-dev.jsonl")) == 400


def test_too_few_examples_are_refused_in_one_line():
    with pytest.raises(UserError, match="^a labelled demo set needs at least 2 examples, not 1$"):
        demo_classify(1)
