"""`nvlm data verify` and `ShardReader`: corruption is caught and named; batches resume exactly."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from nvlm.cli.main import app
from nvlm.data.pretraining import prepare_pretraining
from nvlm.data.pretraining_config import PretrainingConfig
from nvlm.data.shard_reader import ShardReader

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
    reader = ShardReader(made)
    assert reader.seq_len == 64 and reader.model == "bert"
    batches = list(reader.batches(16, seed=1, epochs=1, drop_remainder=False))
    assert sum(len(b["input_ids"]) for _, b in batches) == reader.num_instances
    first = batches[0][1]
    assert first["input_ids"].dtype == np.int32
    assert (first["masked_lm_weights"] == (first["masked_lm_positions"] != 0)).all()
    # Resuming from the position of batch k gives batch k+1 and onward, identically.
    k = 7
    resumed = reader.batches(16, seed=1, epochs=1, drop_remainder=False, start=batches[k][0])
    position, batch = next(resumed)
    assert position == batches[k + 1][0]
    assert (batch["input_ids"] == batches[k + 1][1]["input_ids"]).all()
    # Two ranks read disjoint shards that together are all of them.
    order0, order1 = (
        reader.shard_order(0, 1, rank=0, world=2),
        reader.shard_order(0, 1, rank=1, world=2),
    )
    assert sorted(order0 + order1) == [0, 1, 2]
