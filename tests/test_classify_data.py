"""Labelled files for classification (JSONL, CSV, TSV), their label sets, the one-line errors for
bad input, and the BERT input layout with the reference truncation rule. All data is written
here (ours)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nvlm.data.vocab import Vocab
from nvlm.errors import UserError
from nvlm.tasks.classify.features import encode, featurize, truncate_pair
from nvlm.tasks.classify.reader import LabelSet, read_classify


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _error(call, *args, **kwargs) -> str:
    with pytest.raises(UserError) as exc:
        call(*args, **kwargs)
    return str(exc.value)


SENTIMENT = [
    {"text": "a lovely day", "label": "pos"},
    {"text": "a grim day", "label": "neg"},
    {"text": "lovely", "label": "pos"},
]


# --- reading --------------------------------------------------------------------------------


def test_jsonl_labels_are_numbered_in_first_seen_order(tmp_path):
    data = read_classify(_jsonl(tmp_path / "train.jsonl", SENTIMENT))
    assert data.texts == ["a lovely day", "a grim day", "lovely"]
    assert data.pairs is None and data.targets is None and not data.regression
    assert data.label_set.names == ("pos", "neg")
    assert data.labels.dtype == np.int32 and list(data.labels) == [0, 1, 0]
    assert len(data.sha256) == 64 and data.path == str(tmp_path / "train.jsonl")


def test_labels_option_fixes_the_order(tmp_path):
    path = _jsonl(tmp_path / "train.jsonl", SENTIMENT)
    data = read_classify(path, labels=LabelSet.parse("neg, pos"))
    assert data.label_set.names == ("neg", "pos") and list(data.labels) == [1, 0, 1]
    assert list(read_classify(path, labels=["neg", "pos"]).labels) == [1, 0, 1]


def test_integer_and_string_labels_are_the_same_label(tmp_path):
    path = _jsonl(tmp_path / "t.jsonl", [{"text": "x", "label": 1}, {"text": "y", "label": "0"},
                                          {"text": "z", "label": "1"}])  # fmt: skip
    data = read_classify(path)
    assert data.label_set.names == ("1", "0") and list(data.labels) == [0, 1, 0]


def test_renamed_fields_and_pairs(tmp_path):
    rows = [{"q": "who?", "a": "me", "y": "yes"}, {"q": "why?", "a": "no idea", "y": "no"}]
    data = read_classify(_jsonl(tmp_path / "p.jsonl", rows), text_field="q", pair_field="a",
                         label_field="y")  # fmt: skip
    assert data.texts == ["who?", "why?"] and data.pairs == ["me", "no idea"]


def test_text_pair_is_read_when_present(tmp_path):
    rows = [
        {"text": "a", "text_pair": "b", "label": 0},
        {"text": "c", "text_pair": "d", "label": 1},
    ]
    assert read_classify(_jsonl(tmp_path / "p.jsonl", rows)).pairs == ["b", "d"]


def test_csv_with_quotes_commas_and_a_newline_inside_a_field(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text('text,label\n"good, really",pos\n"two\nlines",neg\nplain,pos\n')
    data = read_classify(path)
    assert data.texts == ["good, really", "two\nlines", "plain"]
    assert list(data.labels) == [0, 1, 0]


def test_tsv_is_not_quoted(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text('label\ttext\n1\t"quoted start, no end\n0\tplain\n')
    data = read_classify(path)
    assert data.texts == ['"quoted start, no end', "plain"]


def test_explicit_format_for_another_suffix(tmp_path):
    path = _jsonl(tmp_path / "train.txt", SENTIMENT)
    assert len(read_classify(path, format="jsonl")) == 3
    assert _error(read_classify, path) == (
        f"cannot tell the format of {path} from its name "
        "(name it .jsonl, .csv or .tsv, or give the format (jsonl, csv, tsv))"
    )


def test_regression_targets_are_floats(tmp_path):
    path = tmp_path / "sts.csv"
    path.write_text("text,text_pair,label\na,b,4.5\nc,d,0\n")
    data = read_classify(path, regression=True)
    assert data.regression and data.label_set is None and data.labels is None
    assert data.targets.dtype == np.float32 and list(data.targets) == [4.5, 0.0]
    assert data.pairs == ["b", "d"]


def test_dev_file_read_with_the_training_label_set(tmp_path):
    train = read_classify(_jsonl(tmp_path / "train.jsonl", SENTIMENT))
    dev = read_classify(_jsonl(tmp_path / "dev.jsonl", [{"text": "meh", "label": "neg"}]),
                        labels=train.label_set)  # fmt: skip
    assert list(dev.labels) == [1]  # one label is fine in dev: the set comes from train


def test_label_set_round_trips_through_json(tmp_path):
    labels = LabelSet(("contradiction", "entailment", "neutral"))
    labels.save(tmp_path / "labels.json")
    assert json.loads((tmp_path / "labels.json").read_text()) == {
        "labels": ["contradiction", "entailment", "neutral"]
    }
    loaded = LabelSet.load(tmp_path / "labels.json")
    assert loaded.names == labels.names and loaded.id("neutral") == 2


def test_big_file_is_streamed_line_by_line(tmp_path):
    path = tmp_path / "big.jsonl"
    with open(path, "w") as handle:
        for i in range(20000):
            handle.write(json.dumps({"text": f"row {i}", "label": i % 3}) + "\n")
    data = read_classify(path)
    assert len(data) == 20000 and data.label_set.names == ("0", "1", "2")


# --- bad input: one line, with file and line number -----------------------------------------


def test_row_without_a_label(tmp_path):
    path = _jsonl(tmp_path / "t.jsonl", [SENTIMENT[0], {"text": "no label here"}])
    assert _error(read_classify, path) == f"{path} line 2: no label ('label' is missing or empty)"


def test_row_with_an_empty_csv_label(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text,label\na,pos\nb,\n")
    assert _error(read_classify, path) == f"{path} line 3: no label ('label' is missing or empty)"


def test_dev_label_unknown_to_training(tmp_path):
    train = read_classify(_jsonl(tmp_path / "train.jsonl", SENTIMENT))
    dev = _jsonl(tmp_path / "dev.jsonl", [{"text": "fine", "label": "neg"},
                                          {"text": "so so", "label": "mixed"}])  # fmt: skip
    assert _error(read_classify, dev, labels=train.label_set) == (
        f"{dev} line 2: the label 'mixed' is not in the label set of {tmp_path / 'train.jsonl'} "
        "(pos, neg)"
    )


def test_label_outside_the_labels_option(tmp_path):
    path = _jsonl(tmp_path / "t.jsonl", SENTIMENT)
    assert _error(read_classify, path, labels=["pos", "neutral"]) == (
        f"{path} line 2: the label 'neg' is not in the label set of --labels (pos, neutral)"
    )


def test_empty_text(tmp_path):
    path = _jsonl(tmp_path / "t.jsonl", [SENTIMENT[0], {"text": "   ", "label": "neg"}])
    assert _error(read_classify, path) == f"{path} line 2: 'text' is empty"


def test_text_that_is_not_a_string(tmp_path):
    path = _jsonl(tmp_path / "t.jsonl", [{"text": 12, "label": "neg"}])
    assert (
        _error(read_classify, path) == f"{path} line 1: 'text' must be a string, not a number (12)"
    )


def test_bad_json_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "a", "label": 1}\n\n{"text": "b" "label": 0}\n')
    assert _error(read_classify, path) == (
        f"{path} line 3: not valid JSON (Expecting ',' delimiter at column 14)"
    )


def test_whole_file_json_array_gets_a_hint(tmp_path):
    path = tmp_path / "t.json"
    path.write_text('[{"text": "a", "label": 1},\n {"text": "b", "label": 0}]\n')
    assert _error(read_classify, path) == (
        f"{path} line 1: not valid JSON (Expecting value at column 1) "
        "(write one JSON object per line (JSONL))"
    )


def test_wrong_column_count(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text,label\nfine,pos\nnot, quoted,neg\n")
    assert _error(read_classify, path) == (
        f"{path} line 3: 3 columns where the header has 2 (quote a text that holds a comma)"
    )


def test_not_utf8(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_bytes(b"text\tlabel\ncaf\xe9\tpos\n")
    assert _error(read_classify, path) == (
        f"{path} line 2: not UTF-8 text (byte 0xe9) (save it as UTF-8)"
    )


def test_missing_column_names_the_option(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("sentence,label\na,pos\n")
    assert _error(read_classify, path) == (
        f"{path}: the header has no column 'text' (columns: sentence, label) "
        "(name the column with --text-field)"
    )


def test_label_set_of_size_one(tmp_path):
    path = _jsonl(
        tmp_path / "t.jsonl", [{"text": "a", "label": "pos"}, {"text": "b", "label": "pos"}]
    )
    assert _error(read_classify, path) == (
        f"{path} has one label only ('pos'): a classifier needs at least two "
        "(check the label field, or pass --regression for a numeric target)"
    )
    assert _error(LabelSet.parse, "pos") == (
        "the label set in --labels has 1 label ('pos'): a classifier needs at least two "
        "(check the label field, or pass --regression for a numeric target)"
    )


def test_labels_option_with_a_duplicate_or_empty_name():
    assert _error(LabelSet.parse, "a,b,a") == "the label 'a' appears twice in --labels"
    assert (
        _error(LabelSet.parse, "a,,b")
        == "--labels 'a,,b' has an empty label (write --labels a,b,c)"
    )


def test_non_float_regression_target(tmp_path):
    path = _jsonl(
        tmp_path / "t.jsonl", [{"text": "a", "label": 0.5}, {"text": "b", "label": "high"}]
    )
    assert _error(read_classify, path, regression=True) == (
        f"{path} line 2: the regression target 'high' is not a finite number"
    )


def test_float_label_without_regression(tmp_path):
    path = _jsonl(tmp_path / "t.jsonl", [{"text": "a", "label": 0.5}])
    assert _error(read_classify, path) == (
        f"{path} line 1: the label must be a string or an integer, not a number (0.5) "
        "(pass --regression for a numeric target)"
    )


def test_pair_missing_in_a_later_row(tmp_path):
    rows = [{"text": "a", "text_pair": "b", "label": 0}, {"text": "c", "label": 1}]
    path = _jsonl(tmp_path / "p.jsonl", rows)
    assert (
        _error(read_classify, path) == f"{path} line 2: no 'text_pair', which the other rows have"
    )


def test_empty_file(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text("\n")
    assert _error(read_classify, path) == f"{path} holds no examples"


# --- features -------------------------------------------------------------------------------

WORDS = ["a", "b", "c", "d", "e", "f", "g", "h", "x", "y", "z"]


@pytest.fixture(scope="module")
def vocab() -> Vocab:
    return Vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS])


def _ids(vocab, text):
    return [vocab.id(w) for w in text.split()]


@pytest.mark.parametrize(
    ("a", "b", "room", "kept_a", "kept_b"),
    [
        (5, 2, 5, 3, 2),  # the longer first text loses its tail; the short one is whole
        (2, 5, 5, 2, 3),  # same for a longer second text
        (4, 4, 6, 3, 3),  # a tie cuts the second text first, then they alternate
        (4, 4, 7, 4, 3),
        (3, 3, 6, 3, 3),  # fits: nothing cut
        (6, 1, 2, 1, 1),
    ],
)
def test_truncate_pair_removes_from_the_longer_text(a, b, room, kept_a, kept_b):
    first, second = list(range(a)), list(range(100, 100 + b))
    cut = truncate_pair(first, second, room)
    assert first == list(range(kept_a)) and second == list(range(100, 100 + kept_b))
    assert cut == (a + b > room)


def test_pair_layout_segments_mask_and_padding(vocab):
    ids, mask, segments, truncated = encode(["a b"], ["c"], vocab, lowercase=True, seq_len=8)
    cls, sep, pad = vocab.cls_id, vocab.sep_id, vocab.pad_id
    assert ids.dtype == np.int32 and ids.shape == (1, 8)
    assert ids[0].tolist() == [cls, *_ids(vocab, "a b"), sep, *_ids(vocab, "c"), sep, pad, pad]
    assert segments[0].tolist() == [0, 0, 0, 0, 1, 1, 0, 0]
    assert mask[0].tolist() == [1, 1, 1, 1, 1, 1, 0, 0]
    assert truncated == 0


def test_pair_truncation_in_the_layout(vocab):
    # seq_len 9 leaves 6 tokens: "a b c d e" (5) + "x y" (2) -> "a b c d" + "x y".
    ids, _, segments, truncated = encode(
        ["a b c d e", "a"], ["x y", "x"], vocab, lowercase=True, seq_len=9
    )
    cls, sep = vocab.cls_id, vocab.sep_id
    assert ids[0].tolist() == [cls, *_ids(vocab, "a b c d"), sep, *_ids(vocab, "x y"), sep]
    assert segments[0].tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1]
    assert truncated == 1


def test_single_text_cut_at_its_end(vocab):
    ids, mask, segments, truncated = encode(["a b c d e f", "A b"], None, vocab, lowercase=True,
                                            seq_len=5)  # fmt: skip
    cls, sep, pad = vocab.cls_id, vocab.sep_id, vocab.pad_id
    assert ids.tolist() == [
        [cls, *_ids(vocab, "a b c"), sep],
        [cls, *_ids(vocab, "a b"), sep, pad],
    ]
    assert segments.sum() == 0 and mask[1].tolist() == [1, 1, 1, 1, 0]
    assert truncated == 1


def test_featurize_carries_labels_and_targets(tmp_path, vocab):
    data = read_classify(_jsonl(tmp_path / "t.jsonl", [{"text": "a b", "label": "y"},
                                                      {"text": "c", "label": "n"}]))  # fmt: skip
    features = featurize(data, vocab, lowercase=True, seq_len=6)
    assert len(features) == 2 and features.label_ids.tolist() == [0, 1]
    assert features.targets is None and features.truncated == 0
    path = tmp_path / "r.csv"
    path.write_text("text,label\na,0.25\nb,1\n")
    features = featurize(read_classify(path, regression=True), vocab, lowercase=True, seq_len=4)
    assert features.label_ids is None and features.targets.tolist() == [0.25, 1.0]


def test_seq_len_too_small_for_a_pair(vocab):
    assert _error(encode, ["a"], ["b"], vocab, lowercase=True, seq_len=4) == (
        "seq len 4 leaves no room for the texts (use data.seq_len 5 or more (the reference "
        "uses 128))"
    )
