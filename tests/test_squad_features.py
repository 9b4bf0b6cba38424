"""Featurization: layout, windows, max-context flags, exact char mapping, truncation count."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nvlm.data.vocab import Vocab
from nvlm.errors import UserError
from nvlm.tasks.squad import featurize, parse_squad, read_squad

FIXTURES = Path(__file__).parent / "fixtures" / "squad"
# Short windows so the 270-token fixture paragraph needs many of them.
SMALL = dict(seq_len=64, doc_stride=24, max_query_len=16)


@pytest.fixture(scope="module")
def uncased() -> Vocab:
    return Vocab.load(FIXTURES / "vocab-uncased.txt")


@pytest.fixture(scope="module")
def cased() -> Vocab:
    return Vocab.load(FIXTURES / "vocab-cased.txt")


@pytest.fixture(scope="module")
def v1():
    return read_squad(FIXTURES / "tiny-v1.1.json")


@pytest.fixture(scope="module")
def v2():
    return read_squad(FIXTURES / "tiny-v2.0.json")


@pytest.mark.parametrize("casing", ["uncased", "cased"])
@pytest.mark.parametrize("name", ["v1", "v2"])
def test_answer_tokens_map_back_to_the_exact_gold_text(request, casing, name):
    dataset, vocab = request.getfixturevalue(name), request.getfixturevalue(casing)
    features = featurize(dataset, vocab, lowercase=casing == "uncased", training=True, **SMALL)
    found = set()
    for i in range(len(features)):
        example = dataset.examples[features.example_index[i]]
        start, end = int(features.start_positions[i]), int(features.end_positions[i])
        if start == 0:
            assert end == 0
            continue
        begin, stop = features.char_span(i, start, end)
        # Original casing and spacing: "Zoé Marchetti-Ruiz" even through the uncased vocab.
        assert example.context[begin:stop] == example.answers[0][0]
        found.add(example.qid)
    answerable = {ex.qid for ex in dataset.examples if not ex.is_impossible}
    assert found == answerable
    assert features.dropped_examples == 0


def test_window_layout(v1, uncased):
    f = featurize(v1, uncased, lowercase=True, **SMALL)
    cls, sep, pad = uncased.cls_id, uncased.sep_id, uncased.pad_id
    assert f.input_ids.shape == (len(f), 64) and f.input_ids.dtype == np.int32
    for name in ("input_mask", "segment_ids", "start_positions", "end_positions", "is_impossible"):
        assert getattr(f, name).dtype == np.int32
    tokenizer = uncased.tokenizer(lowercase=True)
    for i in range(len(f)):
        example = v1.examples[f.example_index[i]]
        off, n = int(f.doc_offset[i]), int(f.doc_length[i])
        ids = f.input_ids[i]
        query = tokenizer.encode(example.question).ids[:16]
        context = tokenizer.encode(example.context).ids
        doc_start = int(f.doc_start[i])
        assert ids[0] == cls and ids[off - 1] == sep and ids[off + n] == sep
        assert list(ids[1 : off - 1]) == query
        assert list(ids[off : off + n]) == context[doc_start : doc_start + n]
        assert (ids[off + n + 1 :] == pad).all()
        assert list(f.segment_ids[i]) == [0] * off + [1] * (n + 1) + [0] * (63 - off - n)
        assert list(f.input_mask[i]) == [1] * (off + n + 1) + [0] * (63 - off - n)
        starts, ends = f.token_char_spans(i)
        assert (starts[:off] == -1).all() and (starts[off + n :] == -1).all()
        assert (ends[off : off + n] > starts[off : off + n]).all()
        assert not f.token_is_max_context[i, :off].any()
        assert not f.token_is_max_context[i, off + n :].any()


def test_windows_step_by_the_stride_and_cover_the_context(v1, uncased):
    f = featurize(v1, uncased, lowercase=True, **SMALL)
    tokenizer = uncased.tokenizer(lowercase=True)
    rows_of = f.rows_by_example(len(v1))
    long_question = v1.examples[7]  # on the 270-token paragraph
    rows = rows_of[7]
    n_doc = len(tokenizer.encode(long_question.context).ids)
    room = 64 - 3 - len(tokenizer.encode(long_question.question).ids)
    assert len(rows) > 3
    starts = [int(f.doc_start[r]) for r in rows]
    lengths = [int(f.doc_length[r]) for r in rows]
    # The reference's meaning of doc_stride: window starts 24 tokens apart, so consecutive
    # windows share (room - 24) tokens; all full but the last, which reaches the end.
    assert starts == [24 * k for k in range(len(rows))]
    assert lengths[:-1] == [room] * (len(rows) - 1)
    assert starts[-1] + lengths[-1] == n_doc
    assert starts[-2] + lengths[-2] < n_doc
    # Each context token is max-context in exactly one window: the one that maximises
    # min(left, right) + 0.01 * length (first window on a tie), computed here naively.
    owner = {}
    for p in range(n_doc):
        best, best_k = None, None
        for k, (s, m) in enumerate(zip(starts, lengths, strict=True)):
            if s <= p < s + m:
                score = min(p - s, s + m - 1 - p) + 0.01 * m
                if best is None or score > best:
                    best, best_k = score, k
        owner[p] = best_k
    for k, r in enumerate(rows):
        off = int(f.doc_offset[r])
        flags = f.token_is_max_context[r, off : off + lengths[k]]
        expected = [owner[starts[k] + j] == k for j in range(lengths[k])]
        assert list(flags) == expected


def test_long_questions_are_truncated_and_counted(v1, uncased):
    tokenizer = uncased.tokenizer(lowercase=True)
    lengths = [len(tokenizer.encode(ex.question).ids) for ex in v1.examples]
    too_long = sum(1 for n in lengths if n > 16)
    assert too_long >= 1  # the fixture's long question (v1-c6), at least
    f = featurize(v1, uncased, lowercase=True, **SMALL)
    assert f.truncated_queries == too_long
    assert (f.doc_offset <= 16 + 2).all()
    roomy = featurize(v1, uncased, lowercase=True, seq_len=200, max_query_len=100)
    assert roomy.truncated_queries == 0


def test_unanswerable_questions_target_cls(v2, uncased):
    f = featurize(v2, uncased, lowercase=True, **SMALL)
    for i in range(len(f)):
        example = v2.examples[f.example_index[i]]
        assert f.is_impossible[i] == int(example.is_impossible)
        if example.is_impossible:
            assert f.start_positions[i] == 0 and f.end_positions[i] == 0


def test_answer_without_tokens_is_dropped_only_in_training(uncased):
    # A control character is dropped by BERT's normalizer: the answer covers no token.
    obj = {
        "data": [
            {
                "paragraphs": [
                    {
                        "context": "Ada \x07 wrote the opening chapter.",
                        "qas": [
                            {"id": "c1", "question": "What?", "answers": [
                                {"text": "\x07", "answer_start": 4}]},
                            {"id": "c2", "question": "Who wrote?", "answers": [
                                {"text": "Ada", "answer_start": 0}]},
                        ],
                    }
                ]
            }
        ]
    }  # fmt: skip
    ds = parse_squad(obj)
    train = featurize(ds, uncased, lowercase=True, training=True, **SMALL)
    assert train.dropped_examples == 1 and set(train.example_index) == {1}
    keep = featurize(ds, uncased, lowercase=True, **SMALL)
    assert keep.dropped_examples == 0 and set(keep.example_index) == {0, 1}
    assert keep.start_positions[0] == 0


def test_context_without_tokens_and_bad_lengths(uncased):
    obj = {"data": [{"paragraphs": [{"context": "\x07\x07", "qas": [
        {"id": "z9", "question": "Why?", "answers": [{"text": "\x07", "answer_start": 0}]}]}]}]}  # fmt: skip
    with pytest.raises(UserError, match=r"question 'z9': the context has no tokens"):
        featurize(parse_squad(obj), uncased, lowercase=True)
    ds = parse_squad(json.loads((FIXTURES / "tiny-v1.1.json").read_text(encoding="utf-8")))
    with pytest.raises(UserError, match="seq len 20 leaves no room"):
        featurize(ds, uncased, lowercase=True, seq_len=20, max_query_len=17)
