"""`ShardReader`: the training input side of a pretraining directory.

The training loop calls:

    reader = ShardReader("data/bert-128")
    reader.num_instances, reader.seq_len, reader.model
    for position, batch in reader.batches(batch_size=32, rank=r, world=w, seed=s, start=pos):
        ...   # batch: dict of numpy arrays; save `position` in the checkpoint to resume there

and for random access `reader.read(shard, start, stop)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from nvlm.data import integrity
from nvlm.data.manifest import read_manifest
from nvlm.data.shard_format import KIND_PRETRAINING
from nvlm.errors import UserError

# (epoch, slot, offset): epoch number, index into this rank's shard order, first unread row.
Position = tuple[int, int, int]


class ShardReader:
    """Read the HDF5 shards listed in a directory's manifest.

    Each epoch visits the shards in a seeded random order; rank r of `world` takes every
    world-th shard of that order (so ranks read disjoint files, as NVIDIA's loader does); when
    there are fewer shards than ranks, every rank reads every shard and keeps every world-th row.
    A shard is loaded whole and its rows are permuted (seed, epoch, shard), so shard size bounds
    memory: choose --shards accordingly.

    BERT batches also carry `masked_lm_weights` (float32, 1 where masked_lm_positions != 0):
    position 0 is [CLS], never masked, so a zero position marks padding.

    Args:
        directory: a directory made by `nvlm data pretraining`.

    Example:
        >>> reader = ShardReader("data/bert")  # doctest: +SKIP
        >>> next(reader.batches(8))[1]["input_ids"].shape  # doctest: +SKIP
        (8, 128)
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.manifest = read_manifest(self.directory)
        if self.manifest["kind"] != KIND_PRETRAINING:
            raise UserError(
                f"{self.directory} holds {self.manifest['kind']!r} data, not pretraining shards"
            )
        self.model: str = self.manifest["model"]
        params = self.manifest["parameters"]
        self.seq_len: int = params["seq_len"]
        self.max_predictions: int | None = params["max_predictions"]
        self.shards: list[dict] = self.manifest["shards"]
        self.names = list(self.manifest["datasets"])
        self.bounds = integrity.shard_bounds(
            self.names, vocab_size=self.manifest["vocab"]["size"], seq_len=self.seq_len
        )
        for shard in self.shards:
            if not (self.directory / shard["name"]).is_file():
                raise UserError(
                    f"{self.directory / shard['name']} is missing",
                    hint="re-run the same `nvlm data pretraining` command to rebuild it",
                )

    @property
    def num_instances(self) -> int:
        return sum(s["instances"] for s in self.shards)

    def read(self, shard: int, start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
        """Rows [start, stop) of one shard, every dataset."""
        path = self.directory / self.shards[shard]["name"]
        try:
            with h5py.File(path, "r") as f:
                out = {name: f[name][start:stop] for name in self.names}
        except (OSError, KeyError, RuntimeError) as exc:  # what h5py raises on a damaged file
            raise integrity.read_error(path, exc) from None
        # Ids and positions are indices the model gathers with: a corrupt one names the file.
        integrity.check_values(path, out, self.bounds, first_row=start)
        if "masked_lm_positions" in out:
            out["masked_lm_weights"] = (out["masked_lm_positions"] != 0).astype(np.float32)
        return out

    def shard_order(self, epoch: int, seed: int, rank: int = 0, world: int = 1) -> list[int]:
        order = np.random.default_rng([seed, epoch]).permutation(len(self.shards)).tolist()
        return order[rank::world] if len(order) >= world else order

    def batches(
        self,
        batch_size: int,
        *,
        rank: int = 0,
        world: int = 1,
        seed: int = 0,
        start: Position = (0, 0, 0),
        epochs: int | None = None,
        drop_remainder: bool = True,
    ) -> Iterator[tuple[Position, dict[str, np.ndarray]]]:
        """Yield (position after this batch, batch) forever or for `epochs` epochs.

        Resuming with `start=` a position saved from this generator continues with the next
        batch; with `drop_remainder` a shard's last incomplete batch is skipped (static shapes).
        """
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        epoch, slot, offset = start
        while epochs is None or epoch < epochs:
            order = self.shard_order(epoch, seed, rank, world)
            while slot < len(order):
                shard = order[slot]
                rows = self.read(shard)
                perm = np.random.default_rng([seed, epoch, shard]).permutation(
                    len(rows["input_ids"])
                )
                if len(self.shards) < world:
                    perm = perm[rank::world]
                while offset < len(perm):
                    end = offset + batch_size
                    if end > len(perm) and drop_remainder:
                        break
                    take = perm[offset:end]
                    offset = min(end, len(perm))
                    yield (epoch, slot, offset), {k: v[take] for k, v in rows.items()}
                slot, offset = slot + 1, 0
            epoch, slot = epoch + 1, 0
