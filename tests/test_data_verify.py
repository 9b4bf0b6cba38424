"""`nvlm data verify` and the shard reader: corruption is caught and named; batches resume exactly."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from nvlm.cli.main import app
from nvlm.data.examples import ExampleSource
from nvlm.data.pretraining.config import PretrainingConfig
from nvlm.data.pretraining.prepare import prepare_pretraining
from nvlm.data.pretraining.shards import read_shards

runner = CliRunner()


@pytest.fixture(scope="module")
def made(demo_corpus, demo_vocab, tmp_path_factory):
    out = tmp_path_factory.mktemp("verify") / "bert"
    cfg = PretrainingConfig.create("bert", seq_len=64, shards=3, dupe_factor=2)
    prepare_pretraining(cfg, [demo_corpus], demo_vocab, out)
    return out


@pytest.fixture
def copy(made, tmp_path):
    target = tmp_path / "bert"
    shutil.copytree(made, target)
    return target


def test_verify_passes_a_good_directory(made):
    result = runner.invoke(app, ["data", "verify", str(made), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and report["files"] == 3 and not report["bad"]
    assert (
        report["instances"]
        == json.loads((made / "manifest.json").read_text())["counts"]["instances"]
    )


def test_verify_names_a_shard_with_a_flipped_value(copy):
    with h5py.File(copy / "shard-00001.hdf5", "r+") as f:
        f["segment_ids"][5, 0] = 1  # [CLS] moved into segment B
    result = runner.invoke(app, ["data", "verify", str(copy)])
    assert result.exit_code == 2
    assert "1 of 3 shard(s)" in result.stderr and "shard-00001.hdf5" in result.stderr
    assert "shard-00000.hdf5" not in result.stderr.splitlines()[-1]
    assert "sha256 differs" in result.stderr


def test_verify_catches_masked_special_and_out_of_range_ids(copy):
    with h5py.File(copy / "shard-00002.hdf5", "r+") as f:
        positions = f["masked_lm_positions"][0]
        f["masked_lm_ids"][0, 0] = 3  # [SEP] as an original token
        f["input_ids"][1, 1] = 10**6
    result = runner.invoke(app, ["data", "verify", str(copy), "--json"])
    assert result.exit_code == 2 and positions[0] != 0
    bad = json.loads(result.stdout)["bad"]
    assert [b["name"] for b in bad] == ["shard-00002.hdf5"]
    problems = " ".join(bad[0]["problems"])
    assert "a special token was masked" in problems and "input_ids: values outside" in problems


def test_verify_reports_a_missing_shard_and_rebuild_fixes_it(copy, demo_corpus, demo_vocab):
    (copy / "shard-00000.hdf5").unlink()
    result = runner.invoke(app, ["data", "verify", str(copy)])
    assert result.exit_code == 2 and "shard-00000.hdf5: missing" in result.stderr
    cfg = PretrainingConfig.create("bert", seq_len=64, shards=3, dupe_factor=2)
    prepare_pretraining(cfg, [demo_corpus], demo_vocab, copy)
    assert runner.invoke(app, ["data", "verify", str(copy)]).exit_code == 0


def test_verify_without_manifest_is_a_user_error(tmp_path):
    result = runner.invoke(app, ["data", "verify", str(tmp_path)])
    assert result.exit_code == 2 and "has no manifest.json" in result.stderr


def test_reader_batches_cover_rank_shards_and_resume_exactly(made):
    # The one shard reader: the manifest through read_shards, rows through the training source.
    shards = read_shards(made)
    assert shards.seq_len == 64 and shards.model == "bert"
    keys = ["input_ids", "masked_lm_positions"]

    def source(seed):
        return ExampleSource(shards.parts(keys), seed=seed, shuffle_buffer=50)

    epoch = source(seed=1).gather(np.arange(shards.examples))
    # One epoch visits every instance once: the rows are those of the shards, permuted.
    rows = np.concatenate([part.read(0, len(part))["input_ids"] for part in shards.parts(keys)])
    assert sorted(map(bytes, epoch["input_ids"])) == sorted(map(bytes, rows))
    assert epoch["input_ids"].dtype == np.int32
    # Resuming from the position after batch k gives batch k+1 and onward, identically.
    k = 7
    stream = source(seed=1).micro_batches(0, 16)
    batches = [next(stream) for _ in range(k + 2)]
    batch = next(source(seed=1).micro_batches((k + 1) * 16, 16))
    assert (batch["input_ids"] == batches[k + 1]["input_ids"]).all()
    # Two ranks read disjoint halves of a global batch that together are all of it.
    rank0, rank1 = (next(source(seed=1).micro_batches(0, 8, rank=r, world=2)) for r in (0, 1))
    both = np.concatenate([rank0["input_ids"], rank1["input_ids"]])
    assert sorted(map(bytes, both)) == sorted(map(bytes, batches[0]["input_ids"]))
