"""Decoding: synthetic logits -> the span, the n-best list, the v2.0 no-answer decision."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from nvlm.data.vocab import Vocab
from nvlm.tasks.squad import (
    SpanCandidate,
    answer_example,
    bert_candidates,
    decode_predictions,
    featurize,
    read_squad,
    valid_span,
)
from nvlm.tasks.squad.metrics import evaluate_v1, evaluate_v2

FIXTURES = Path(__file__).parent / "fixtures" / "squad"
SMALL = dict(seq_len=64, doc_stride=24, max_query_len=16)


@pytest.fixture(scope="module")
def vocab() -> Vocab:
    return Vocab.load(FIXTURES / "vocab-uncased.txt")


@pytest.fixture(scope="module")
def v1(vocab):
    dataset = read_squad(FIXTURES / "tiny-v1.1.json")
    return dataset, featurize(dataset, vocab, lowercase=True, **SMALL)


@pytest.fixture(scope="module")
def v2(vocab):
    dataset = read_squad(FIXTURES / "tiny-v2.0.json")
    # Windows long enough for every gold span to start at a max-context token of a window that
    # holds all of it (with 64, "Petra Aslund and her guide Tomas Fell" starts where window 1
    # is not max-context and window 0 cuts it off: no window can propose it, as in the reference).
    return dataset, featurize(dataset, vocab, lowercase=True, seq_len=96, doc_stride=32)


def gold_logits(features, noise_seed=0):
    """Small random logits with a peak on each window's gold start and end."""
    rng = np.random.default_rng(noise_seed)
    shape = (len(features), features.seq_len)
    start, end = rng.normal(0, 0.1, shape), rng.normal(0, 0.1, shape)
    for i in range(len(features)):
        if features.start_positions[i]:
            start[i, features.start_positions[i]] = 6.0
            end[i, features.end_positions[i]] = 6.0
    return start.astype(np.float32), end.astype(np.float32)


def test_peaked_logits_give_the_gold_answers(v1):
    dataset, features = v1
    preds = decode_predictions(dataset, features, *gold_logits(features))
    assert preds.null_odds is None
    for example in dataset.examples:
        assert preds.predictions[example.qid] == example.answers[0][0]
        nbest = preds.nbest[example.qid]
        assert 1 < len(nbest) <= 20
        assert nbest[0]["text"] == example.answers[0][0]
        assert sum(e["probability"] for e in nbest) == pytest.approx(1.0)
        assert [e["probability"] for e in nbest] == sorted(
            (e["probability"] for e in nbest), reverse=True
        )
        assert len({e["text"] for e in nbest}) == len(nbest)  # each text once
        for entry in nbest:
            assert example.context[entry["start_char"] : entry["end_char"]] == entry["text"]
    assert evaluate_v1(dataset.gold_answers(), preds.predictions) == {
        "exact_match": 100.0,
        "f1": 100.0,
    }


def test_never_picks_query_special_or_padding_positions(v1):
    dataset, features = v1
    shape = (len(features), features.seq_len)
    start, end = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    for i in range(len(features)):
        off, n = int(features.doc_offset[i]), int(features.doc_length[i])
        start[i, :off] = end[i, :off] = 50.0  # [CLS], query, [SEP]
        start[i, off + n :] = end[i, off + n :] = 50.0  # closing [SEP] and padding
        start[i, off + 1] = end[i, off + 2] = 1.0  # the best context span: 2nd..3rd token
    preds = decode_predictions(dataset, features, start, end)
    first_row = {int(e): i for i, e in reversed(list(enumerate(features.example_index)))}
    for e, example in enumerate(dataset.examples):
        i = first_row[e]
        chars = features.token_chars(i)
        assert preds.predictions[example.qid] == example.context[chars[1, 0] : chars[2, 1]]


def test_max_answer_length_is_honoured(v1):
    dataset, features = v1
    i = 0  # first window of v1-a1
    off = int(features.doc_offset[i])
    start = np.zeros(features.seq_len, np.float32)
    end = np.zeros(features.seq_len, np.float32)
    start[off] = 10.0
    end[off + 5] = 10.0  # 6 tokens: too long for 3
    end[off + 1] = 1.0
    top = bert_candidates(features, i, start, end, n_best=5, max_answer_len=3)
    assert (top[0].start, top[0].end, top[0].score) == (off, off + 1, 11.0)
    assert all(c.end - c.start + 1 <= 3 for c in top)
    assert [c.score for c in top] == sorted((c.score for c in top), reverse=True)
    longer = bert_candidates(features, i, start, end, n_best=5, max_answer_len=6)
    assert (longer[0].start, longer[0].end) == (off, off + 5)


def test_start_must_be_a_max_context_token(v1):
    dataset, features = v1
    rows = features.rows_by_example(len(dataset))[7]  # long paragraph, many windows
    i = int(rows[1])
    off, n = int(features.doc_offset[i]), int(features.doc_length[i])
    flags = features.token_is_max_context[i, off : off + n]
    assert flags[-1] == np.False_ and flags[n // 2]  # window edge: better seen elsewhere
    assert not valid_span(features, i, off + n - 1, off + n - 1, 30)
    assert valid_span(features, i, off + n // 2, off + n // 2, 30)
    assert not valid_span(features, i, off - 1, off, 30)  # the [SEP] before the context
    start = np.zeros(features.seq_len, np.float32)
    start[off + n - 1] = 100.0
    end = start.copy()
    assert all(c.start != off + n - 1 for c in bert_candidates(features, i, start, end))


def test_v2_null_score_and_threshold(v2):
    dataset, features = v2
    start, end = gold_logits(features)
    # [CLS] logits: each window's null score is 2 * value; the minimum over windows counts.
    rows = features.rows_by_example(len(dataset))
    for e, example in enumerate(dataset.examples):
        for k, row in enumerate(rows[e]):
            value = 5.0 if example.is_impossible else -5.0
            start[row, 0] = end[row, 0] = value + k  # later windows are more sure of "no answer"
    preds = decode_predictions(dataset, features, start, end)
    assert set(preds.null_odds) == {ex.qid for ex in dataset.examples}
    for e, example in enumerate(dataset.examples):
        nbest = preds.nbest[example.qid]
        null = next(entry for entry in nbest if entry["text"] == "")
        assert null["start_char"] is None and null["end_char"] is None
        first = int(rows[e][0])
        assert null["start_logit"] == float(start[first, 0])  # the min-null window (k = 0)
        best = next(entry for entry in nbest if entry["text"])
        odds = float(start[first, 0]) * 2 - (best["start_logit"] + best["end_logit"])
        assert preds.null_odds[example.qid] == pytest.approx(odds)
        expected = "" if example.is_impossible else example.answers[0][0]
        assert preds.predictions[example.qid] == expected
    scores = evaluate_v2(dataset.gold_answers(), preds.predictions, preds.null_odds)
    assert scores["exact"] == 100.0 and scores["best_f1"] == 100.0
    # A threshold above every null odds answers everything with a span.
    loose = decode_predictions(dataset, features, start, end, null_threshold=1e6)
    assert all(loose.predictions.values())


def test_answer_example_for_any_span_head(v1):
    """The assembly a joint (ELECTRA) head reuses: its own candidates and null score."""
    dataset, features = v1
    example = dataset.examples[0]
    i = 0
    off = int(features.doc_offset[i])
    chars = features.token_chars(i)
    spans = [
        SpanCandidate(i, off + 2, off + 3, -1.0, -1.5, -2.5),
        SpanCandidate(i, off, off, -0.1, -0.2, -0.3),
        SpanCandidate(i, off, off, -0.4, -0.4, -0.8),  # same text again: skipped
        SpanCandidate(i, off + 4, off + 4, -3.0, -3.0, -6.0),
    ]
    text, nbest, odds = answer_example(example, features, spans, n_best=2)
    assert text == example.context[chars[0, 0] : chars[0, 1]]
    assert [e["text"] for e in nbest] == [text, example.context[chars[2, 0] : chars[3, 1]]]
    assert odds is None
    weights = [math.exp(-0.3), math.exp(-2.5)]
    assert nbest[0]["probability"] == pytest.approx(weights[0] / sum(weights))
    null = SpanCandidate(i, 0, 0, 1.0, 1.0, 2.0)
    text, nbest, odds = answer_example(example, features, spans, n_best=2, null=null)
    assert (text, odds) == ("", pytest.approx(2.3))
    assert [e["text"] for e in nbest][:1] == [""] and len(nbest) == 2
    text, _, _ = answer_example(example, features, spans, null=null, null_threshold=3.0)
    assert text == example.context[chars[0, 0] : chars[0, 1]]


def test_write_prediction_files(v2, tmp_path):
    dataset, features = v2
    preds = decode_predictions(dataset, features, *gold_logits(features))
    paths = preds.write(tmp_path / "eval")
    assert sorted(p.name for p in paths.values()) == [
        "nbest_predictions.json",
        "null_odds.json",
        "predictions.json",
    ]
    assert json.loads(paths["predictions"].read_text()) == preds.predictions
    nbest = json.loads(paths["nbest"].read_text())
    assert set(nbest["v2-d1"][0]) == {
        "text", "probability", "start_logit", "end_logit", "start_char", "end_char"
    }  # fmt: skip
    with pytest.raises(ValueError, match="expected"):
        decode_predictions(dataset, features, np.zeros((1, 64)), np.zeros((1, 64)))
