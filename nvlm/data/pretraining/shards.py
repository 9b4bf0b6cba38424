"""What a training run needs to know about a directory of pretraining shards (from its
manifest.json, written by `nvlm data pretraining`), checked against the model up front so that
a mismatch is one clear error instead of a shape error deep inside TensorFlow.

`ShardInfo.check()` compares every shard with the manifest before training (nvlm.data.integrity)
and `ShardInfo.parts()` gives the training input parts that check each block of rows they read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nvlm.data import integrity
from nvlm.data.examples import Hdf5Part
from nvlm.data.manifest import read_manifest
from nvlm.data.pretraining.shard_format import VOCAB_COPY, schema
from nvlm.errors import UserError


@dataclass(frozen=True)
class ShardInfo:
    directory: Path
    model: str  # "bert" | "electra"
    vocab_size: int  # tokens in the vocab the shards were made with (unpadded)
    vocab_path: Path | None
    seq_len: int
    max_predictions: int | None  # BERT only (ELECTRA masks dynamically)
    shard_paths: list[Path]
    examples: int
    lowercase: bool = True
    records: list[dict] = field(default_factory=list)  # the manifest's shard records
    datasets: dict[str, tuple[np.dtype, tuple[int, ...]]] = field(default_factory=dict)

    def layout(self, record: dict) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
        """Dataset -> (dtype, full shape) that the shard of `record` must hold."""
        n = int(record["instances"])
        return {name: (dtype, (n, *shape)) for name, (dtype, shape) in self.datasets.items()}

    @property
    def bounds(self) -> dict[str, int]:
        """Dataset -> the exclusive upper bound of its values (every lower bound is 0)."""
        return integrity.shard_bounds(self.datasets, vocab_size=self.vocab_size,
                                      seq_len=self.seq_len)  # fmt: skip

    def check(self, *, full: bool = False, world=None) -> None:
        """Every shard against the manifest: size and HDF5 layout; `full` also sha256."""
        integrity.check_files(
            [(p, self.layout(r), r) for p, r in zip(self.shard_paths, self.records, strict=True)],
            full=full,
            world=world,
        )

    def parts(self, keys) -> list:
        """The shards as training input parts (row counts from the manifest, rows checked)."""
        return [
            Hdf5Part(p, keys, rows=int(r["instances"]), bounds=self.bounds)
            for p, r in zip(self.shard_paths, self.records, strict=True)
        ]


def read_shards(directory: str | Path, *, expect_kind: str | None = None) -> ShardInfo:
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(
            f"shard directory {directory} does not exist "
            "(make one with: nvlm data pretraining --input ... --vocab vocab.txt --out DIR)"
        )
    m = read_manifest(directory, made_by="nvlm data pretraining")
    params = m.get("parameters", {})
    model = str(m.get("model") or params.get("model") or "")
    if expect_kind and model and model != expect_kind:
        raise UserError(
            f"{directory} holds {model} shards but this is a {expect_kind} run "
            f"(make {expect_kind} shards with: nvlm data pretraining --model {expect_kind})"
        )
    vocab = m.get("vocab", {})
    shards = m.get("shards", [])
    if not shards:
        raise UserError(
            f"{directory} lists no shards in its manifest (re-run nvlm data pretraining)"
        )
    paths = [directory / s["name"] for s in shards]
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise UserError(
            f"{directory} is missing shard(s) {', '.join(missing[:3])} "
            "(re-run nvlm data pretraining with the same arguments to re-create them)"
        )
    vocab_path = vocab.get("path")
    local_vocab = directory / VOCAB_COPY
    return ShardInfo(
        directory=directory,
        model=model or (expect_kind or ""),
        vocab_size=int(vocab["size"]),
        vocab_path=local_vocab
        if local_vocab.exists()
        else (Path(vocab_path) if vocab_path else None),
        seq_len=int(params["seq_len"]),
        max_predictions=int(params["max_predictions"])
        if model != "electra" and params.get("max_predictions") is not None
        else None,
        shard_paths=paths,
        examples=sum(int(s.get("instances", 0)) for s in shards),
        lowercase=bool(params.get("lowercase", True)),
        records=list(shards),
        datasets=_datasets(m, model or (expect_kind or ""), params),
    )


def _datasets(manifest: dict, model: str, params: dict) -> dict:
    """Dataset -> (dtype, per-row shape): as the manifest lists them, else the format's."""
    listed = manifest.get("datasets")
    if listed:
        return {
            name: (np.dtype(d["dtype"]), tuple(int(x) for x in d["shape"][1:]))
            for name, d in listed.items()
        }
    return schema(model, int(params["seq_len"]), params.get("max_predictions"))
