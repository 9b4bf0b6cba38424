"""The feature cache: a hit skips tokenization; any change of input or setting misses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nvlm.tasks.squad.cache as cache
from nvlm.data.vocab import Vocab
from nvlm.tasks.squad import load_or_featurize, read_squad

FIXTURES = Path(__file__).parent / "fixtures" / "squad"
SMALL = dict(seq_len=64, doc_stride=24, max_query_len=16)


@pytest.fixture()
def inputs():
    return read_squad(FIXTURES / "tiny-v1.1.json"), Vocab.load(FIXTURES / "vocab-uncased.txt")


def no_tokenizing(*args, **kwargs):
    raise AssertionError("featurize was called on a cache hit")


def test_second_call_is_a_hit_without_tokenizing(tmp_path, inputs, monkeypatch):
    dataset, vocab = inputs
    first, hit = load_or_featurize(dataset, vocab, tmp_path, lowercase=True, **SMALL)
    assert not hit
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"  # no temporary file left behind
    monkeypatch.setattr(cache, "featurize", no_tokenizing)
    monkeypatch.setattr(Vocab, "tokenizer", no_tokenizing)
    second, hit = load_or_featurize(dataset, vocab, tmp_path, lowercase=True, **SMALL)
    assert hit
    loaded = second.to_arrays()
    for name, array in first.to_arrays().items():
        np.testing.assert_array_equal(loaded[name], array, err_msg=name)
        assert loaded[name].dtype == array.dtype, name
    assert second.truncated_queries == first.truncated_queries > 0


@pytest.mark.parametrize(
    "change",
    [
        {"doc_stride": 16},
        {"seq_len": 80},
        {"max_query_len": 12},
        {"lowercase": False},
        {"training": True},
    ],
)
def test_changed_setting_misses(tmp_path, inputs, change):
    dataset, vocab = inputs
    settings = dict(SMALL, lowercase=True)
    load_or_featurize(dataset, vocab, tmp_path, **settings)
    _, hit = load_or_featurize(dataset, vocab, tmp_path, **{**settings, **change})
    assert not hit
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_changed_file_or_vocab_misses(tmp_path, inputs):
    dataset, vocab = inputs
    load_or_featurize(dataset, vocab, tmp_path, lowercase=True, **SMALL)
    edited = tmp_path / "edited.json"
    edited.write_bytes((FIXTURES / "tiny-v1.1.json").read_bytes() + b"\n")
    _, hit = load_or_featurize(read_squad(edited), vocab, tmp_path, lowercase=True, **SMALL)
    assert not hit
    other = Vocab.load(FIXTURES / "vocab-cased.txt")
    _, hit = load_or_featurize(dataset, other, tmp_path, lowercase=True, **SMALL)
    assert not hit


def test_corrupt_cache_file_is_rebuilt(tmp_path, inputs):
    dataset, vocab = inputs
    load_or_featurize(dataset, vocab, tmp_path, lowercase=True, **SMALL)
    (path,) = tmp_path.glob("*.npz")
    path.write_bytes(path.read_bytes()[:100])
    features, hit = load_or_featurize(dataset, vocab, tmp_path, lowercase=True, **SMALL)
    assert not hit and len(features) > 0
    _, hit = load_or_featurize(dataset, vocab, tmp_path, lowercase=True, **SMALL)
    assert hit


def test_no_cache_dir_always_featurizes(inputs):
    dataset, vocab = inputs
    _, hit = load_or_featurize(dataset, vocab, None, lowercase=True, **SMALL)
    assert not hit
