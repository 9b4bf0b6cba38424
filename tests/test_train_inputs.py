"""What `nvlm pretrain` does with corrupt data: a shard or stream that no longer matches its
manifest ends the run with one line naming the file and `nvlm data verify` (exit 2), before
training when it can be seen then, else at the batch that meets it, after the last good
checkpoint (docs/training.md, "Corrupt data")."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import error_line, invoke

from nvlm.data.examples import ArrayPart, ExampleSource
from nvlm.data.pretraining.config import PretrainingConfig
from nvlm.data.pretraining.prepare import prepare_pretraining
from nvlm.errors import UserError

BATCH = 16  # micro-batch = global batch (1 process, no accumulation): one step per batch
TINY = [
    "--preset", "cpu-fp32", "--set", "model.size=tiny", "--set", "train.accumulation=1",
    "--set", f"train.batch_size={BATCH}", "--set", "train.warmup_steps=2",
    "--set", "train.log_every=2", "--set", "train.checkpoint_every=2",
    "--set", "train.keep_checkpoints=10", "--set", "train.seed=42",
]  # fmt: skip


def pretrain(model: str, data: Path, out: Path, *extra, steps: int = 2):
    return invoke("pretrain", "--model", model, "--data", data, "--out", out,
                  "--steps", steps, *TINY, *extra)  # fmt: skip


def checkpoints(run: Path) -> list[str]:
    return sorted(p.stem for p in (run / "checkpoints").glob("ckpt-*.index"))


@pytest.fixture(scope="module")
def made(demo_corpus, demo_vocab, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train-inputs")
    out = {}
    for model in ("bert", "electra"):
        cfg = PretrainingConfig.create(model, seq_len=32, shards=2, dupe_factor=1)
        prepare_pretraining(cfg, [demo_corpus], demo_vocab, root / model)
        out[model] = root / model
    return out


@pytest.fixture
def shards(made, tmp_path):
    """A fresh copy of a model's shard directory, to damage."""

    def copy(model: str = "bert") -> Path:
        target = tmp_path / f"{model}-shards"
        shutil.copytree(made[model], target)
        return target

    return copy


def manifest(directory: Path) -> dict:
    return json.loads((directory / "manifest.json").read_text())


def test_truncated_shard_stops_the_run_before_anything_is_written(shards, tmp_path):
    data = shards("bert")
    shard = data / "shard-00001.hdf5"
    size = shard.stat().st_size
    os.truncate(shard, size // 2)
    line = error_line(pretrain("bert", data, tmp_path / "run"))
    assert f"{shard} has {size // 2:,} bytes but the manifest records {size:,}" in line
    assert f"nvlm data verify {data}" in line
    assert not (tmp_path / "run").exists()  # no run directory, config or checkpoint


def test_shard_with_another_size_is_refused(shards, tmp_path):
    data = shards("electra")
    shard = data / "shard-00000.hdf5"
    with open(shard, "ab") as f:  # HDF5 still opens a file with bytes after its end
        f.write(b"\0" * 10)
    line = error_line(pretrain("electra", data, tmp_path / "run"))
    assert f"{shard} has" in line and "the manifest records" in line
    assert f"nvlm data verify {data}" in line
    assert not (tmp_path / "run").exists()


def test_old_manifest_without_sizes_falls_back_to_the_hdf5_layout(shards, tmp_path):
    data = shards("bert")
    m = manifest(data)
    for record in m["shards"]:
        del record["size"]  # as written before sizes were recorded
    (data / "manifest.json").write_text(json.dumps(m))
    shard = data / "shard-00001.hdf5"
    os.truncate(shard, shard.stat().st_size - 100)
    line = error_line(pretrain("bert", data, tmp_path / "run"))
    assert f"{shard} is not a readable HDF5 file (" in line and "truncated" in line
    # A shard rewritten with another layout (the right datasets, int64 ids).
    shard.unlink()
    rows = m["shards"][1]["instances"]
    with h5py.File(data / "shard-00000.hdf5", "r") as src, h5py.File(shard, "w") as dst:
        for name in src:
            dtype = np.int64 if name == "input_ids" else src[name].dtype
            dst.create_dataset(name, data=src[name][:rows].astype(dtype))
    line = error_line(pretrain("bert", data, tmp_path / "run"))
    assert f"{shard} has input_ids int64 [{rows}, 32], the manifest says int32 [{rows}, 32]" in line
    assert not (tmp_path / "run").exists()


def source_rows(data: Path, positions, buffer: int, seed: int = 42) -> list[tuple[int, int]]:
    """(shard, row) that training reads at each global position: the same ExampleSource order
    over parts of the same sizes, holding their own coordinates."""
    sizes = [r["instances"] for r in manifest(data)["shards"]]
    parts = [ArrayPart({"shard": np.full(n, i), "row": np.arange(n)}) for i, n in enumerate(sizes)]
    got = ExampleSource(parts, seed=seed, shuffle_buffer=buffer).gather(np.asarray(positions))
    return list(zip(got["shard"].tolist(), got["row"].tolist(), strict=True))


def test_out_of_range_id_met_mid_run_stops_after_the_last_good_checkpoint(shards, tmp_path):
    data = shards("bert")
    buffer = 2 * BATCH  # each shuffle window (one read of the shards) serves two steps
    # A row of step 9 (window 4, read when step 9 needs it) gets an id far outside the vocab;
    # size and layout stay, so the start check passes and the run meets it mid-way.
    [(shard_index, row)] = source_rows(data, [8 * BATCH + 3], buffer)
    shard = data / f"shard-{shard_index:05d}.hdf5"
    with h5py.File(shard, "r+") as f:
        f["input_ids"][row, 1] = 1_048_663
    vocab = manifest(data)["vocab"]["size"]
    run = tmp_path / "run"
    line = error_line(pretrain("bert", data, run, "--set", f"data.shuffle_buffer={buffer}",
                               steps=20))  # fmt: skip
    assert f"{shard} holds input_ids 1048663 outside [0, {vocab}) at row {row}" in line
    assert f"nvlm data verify {data}" in line
    # Steps 1-8 trained and were checkpointed; nothing was saved after the bad batch.
    assert checkpoints(run) == ["ckpt-2", "ckpt-4", "ckpt-6", "ckpt-8"]
    assert "ckpt-8" in (run / "checkpoints" / "checkpoint").read_text()
    logged = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert logged == [2, 4, 6, 8]


def test_full_verify_catches_an_in_range_flip(shards, tmp_path):
    data = shards("bert")
    shard = data / "shard-00000.hdf5"
    with h5py.File(shard, "r+") as f:  # a valid id, another word: only a hash can tell
        f["input_ids"][3, 2] = (int(f["input_ids"][3, 2]) + 1) % 900 + 10
    line = error_line(pretrain("bert", data, tmp_path / "run", "--set", "data.verify=full"))
    assert f"{shard} differs from the sha256 in its manifest" in line
    assert f"nvlm data verify {data}" in line
    assert not (tmp_path / "run" / "checkpoints").exists()
    # The default (size and layout) does not read the data: the flip trains unnoticed.
    assert pretrain("bert", data, tmp_path / "run2").exit_code == 0


def test_bad_setting_of_data_verify_is_refused(shards, tmp_path):
    line = error_line(pretrain("bert", shards("bert"), tmp_path / "run", "--set",
                               "data.verify=sha"))  # fmt: skip
    assert "data.verify" in line


# -- Transformer-XL streams (nvlm data lm) ----------------------------------------------------
TXL = ["--set", "data.seq_len=16", "--set", "model.mem_len=16"]


@pytest.fixture
def lm(txl_corpus, tmp_path) -> Path:
    """A fresh copy of conftest's LM directory, to damage."""
    shutil.copytree(txl_corpus, tmp_path / "lm")
    return tmp_path / "lm"


def test_truncated_lm_stream_stops_the_run_before_anything_is_written(lm, tmp_path):
    stream = lm / "train.hdf5"
    size = stream.stat().st_size
    os.truncate(stream, size - 1000)
    line = error_line(pretrain("transformer-xl", lm, tmp_path / "run", *TXL))
    assert f"{stream} has {size - 1000:,} bytes but the manifest records {size:,}" in line
    assert f"nvlm data verify {lm}" in line
    assert not (tmp_path / "run").exists()


def test_out_of_range_id_in_an_lm_stream_is_named_before_training(lm, tmp_path):
    # The whole stream is loaded at start, so its ids are checked there (a corrupt id used to
    # train silently: the adaptive embedding does not fail on it).
    stream = lm / "train.hdf5"
    with h5py.File(stream, "r+") as f:
        f["ids"][1234] = 1_048_663
    vocab = manifest(lm)["vocab"]["size"]
    line = error_line(pretrain("transformer-xl", lm, tmp_path / "run", *TXL))
    assert f"{stream} holds ids 1048663 outside [0, {vocab}) at token 1,234" in line
    assert f"nvlm data verify {lm}" in line
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_full_verify_catches_an_in_range_flip_in_an_lm_stream(lm, tmp_path):
    stream = lm / "train.hdf5"
    with h5py.File(stream, "r+") as f:
        f["ids"][50] = (int(f["ids"][50]) + 1) % manifest(lm)["vocab"]["size"]
    line = error_line(
        pretrain("transformer-xl", lm, tmp_path / "run", *TXL, "--set", "data.verify=full")
    )
    assert f"{stream} differs from the sha256 in its manifest" in line
    assert not (tmp_path / "run" / "checkpoints").exists()


class _OtherRankFoundFile1Bad:
    """Rank 0 of 2, where rank 1 (hashing files 1, 3, ...) found file 1 bad."""

    rank, size = 0, 2

    def allreduce_mean(self, values, name):
        return (np.asarray(values) + np.array([0.0, 1.0], np.float32)) / 2


def test_full_verify_over_ranks_names_a_file_another_rank_hashed(shards):
    from nvlm.data.pretraining.shards import read_shards

    data = shards("bert")
    shard = data / "shard-00001.hdf5"
    with h5py.File(shard, "r+") as f:
        f["input_ids"][0, 1] = 7
    info = read_shards(data)
    info.check()  # size and layout still match
    with pytest.raises(UserError, match=f"{shard} differs from the sha256 in its manifest"):
        info.check(full=True, world=_OtherRankFoundFile1Bad())
